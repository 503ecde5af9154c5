//go:build !unix

package paths

import "os"

func checkOwner(string, os.FileInfo) error { return nil }
