package main

import "example.com/bad/helper/gtk"

func main() { gtk.Init() }
