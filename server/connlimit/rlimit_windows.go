package connlimit

// DescriptorLimit is 0 on Windows: sockets there are not counted against a
// per-process descriptor limit, so the cap comes from --max-conns alone.
func DescriptorLimit() int { return 0 }
