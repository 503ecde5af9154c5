// Package keyring keeps the helper's secrets (the device credential) in the
// operating system's keyring through github.com/zalando/go-keyring, and says
// plainly when there is none.
package keyring

import "errors"

// ErrNotFound is returned by Get when no secret is stored under the key.
var ErrNotFound = errors.New("keyring: secret not found")

// Store is a place for secrets, keyed by name.
type Store interface {
	Get(key string) (string, error)
	Set(key, value string) error
	Delete(key string) error
	// Backend names where secrets go ("secret-service", "file"), for doctor.
	Backend() string
}

// Open (in open.go) returns the best store available for the user:
//
//	func Open(dirs paths.Dirs) (Store, error)
//
// the OS keyring when it answers, else a 0600 file in dirs.State that
// `detour doctor` flags.
