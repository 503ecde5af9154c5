//go:build !linux && !darwin && !windows

package installer

func platformFinders() []PackageFinder { return nil }
