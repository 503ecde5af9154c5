//go:build !windows

package sysproxy

import "net/url"

// platformProxy: outside Windows the environment is the system setting
// (ForURL has already consulted it), so the answer is direct.
func platformProxy(*url.URL) (*url.URL, error) { return nil, nil }
