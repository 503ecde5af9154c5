package gtk

import "C" // breaks: the tool is not cgo-free

func Init() {}
