package cli

import "strings"

// IsRelayInvocation reports whether a browser started us: Chrome passes the
// caller's origin, Firefox the manifest path and the extension id.
func IsRelayInvocation(args []string) bool {
	if strings.HasPrefix(args[0], "chrome-extension://") {
		return true
	}
	return len(args) >= 2 && strings.HasSuffix(args[0], ".json")
}

// runRelay is implemented with the relay (helper/relay).
func runRelay(args []string) int {
	_ = args
	return 1
}
