// Package method is the one vocabulary for how a block happened (or why a
// failure is not a block). Probe output, the protocol, reports and the
// dashboard all use these strings. The words themselves are generated into
// method_gen.go from shared/protocol/contract.json, the one source.
package method

// IsBlock reports whether m names a block method.
func IsBlock(m string) bool {
	for _, b := range Blocks {
		if b == m {
			return true
		}
	}
	return false
}

// Valid reports whether m is any word of the vocabulary.
func Valid(m string) bool {
	if IsBlock(m) {
		return true
	}
	for _, b := range NonBlocks {
		if b == m {
			return true
		}
	}
	return false
}

// ValidNeed reports whether n is one of Needs.
func ValidNeed(n string) bool {
	for _, x := range Needs {
		if x == n {
			return true
		}
	}
	return false
}
