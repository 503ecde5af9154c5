//go:build !unix

package relay

func ignoreSIGPIPE() {}
