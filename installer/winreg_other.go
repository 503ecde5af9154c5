//go:build !windows

package installer

func systemRegistry() Registry { return nil }
