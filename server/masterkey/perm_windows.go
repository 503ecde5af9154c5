package masterkey

// Exposed is always false on Windows: access there is governed by ACLs,
// which the mode bits do not show.
func Exposed(path string) bool { return false }
