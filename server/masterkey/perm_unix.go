//go:build !windows

package masterkey

import "os"

// Exposed says whether the file's mode lets users other than its owner (and
// group) read it: a master key anyone on the machine can read protects
// nothing. Serve warns rather than refuses, since container secret mounts
// are often 0644 inside a private filesystem.
func Exposed(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().Perm()&0o004 != 0
}
