package keyring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/detour-project/detour/helper/paths"
)

// Service is the name secrets are filed under in the OS keyring.
const Service = "detour"

// DefaultTimeout bounds every keyring call. A locked Secret Service collection
// answers Unlock with a prompt that nobody may ever see, and go-keyring waits
// for it without a deadline; we would rather fall over with a clear error.
const DefaultTimeout = 5 * time.Second

// FileName is the fallback file in the state folder.
const FileName = "secrets.json"

// probeKey is read (never written) at Open to see whether the keyring answers.
const probeKey = "detour-probe"

// ErrTimeout says the OS keyring did not answer in time, usually because it is
// locked and waiting for a password prompt.
var ErrTimeout = errors.New("keyring: the OS keyring did not answer in time (is it locked?)")

// provider is the part of go-keyring we use; tests substitute a blocking or
// failing one to exercise the timeout and fallback paths.
type provider interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type goKeyring struct{}

func (goKeyring) Get(s, u string) (string, error) { return gokeyring.Get(s, u) }
func (goKeyring) Set(s, u, p string) error        { return gokeyring.Set(s, u, p) }
func (goKeyring) Delete(s, u string) error        { return gokeyring.Delete(s, u) }

// options are the knobs tests turn; Open uses the defaults.
type options struct {
	provider provider
	service  string
	timeout  time.Duration
}

// Open returns the best store available for the user: the OS keyring when it
// answers a probe within DefaultTimeout, else a 0600 file in dirs.State. The
// file store's Unavailable says why the keyring was not used, and `detour
// doctor` shows it. When the keyring works and an old fallback file exists,
// its secrets move into the keyring and the file is removed.
func Open(dirs paths.Dirs) (Store, error) {
	return open(dirs, options{provider: goKeyring{}, service: Service, timeout: DefaultTimeout})
}

func open(dirs paths.Dirs, o options) (Store, error) {
	fallback := filepath.Join(dirs.State, FileName)
	ks := &osStore{p: o.provider, service: o.service, timeout: o.timeout}
	if err := ks.probe(); err != nil {
		return &FileStore{path: fallback, reason: err}, nil
	}
	if moved, err := migrate(fallback, ks); err != nil && !moved {
		// The keyring refused the old secrets: keep using the file that
		// holds them rather than lose the device credential.
		return &FileStore{path: fallback, reason: err}, nil
	}
	// Otherwise the keyring; a file that could not be read or removed is
	// left where it is, and doctor reports it.
	return ks, nil
}

// Unavailable returns why s is not the OS keyring, or nil when it is.
func Unavailable(s Store) error {
	if f, ok := s.(*FileStore); ok {
		if f.reason == nil {
			return errors.New("keyring: secrets are kept in a file, not the OS keyring")
		}
		return f.reason
	}
	return nil
}

// osStore is the OS keyring through go-keyring, every call bounded in time.
type osStore struct {
	p       provider
	service string
	timeout time.Duration
}

// Backend names the OS keyring the way people know it.
func (s *osStore) Backend() string {
	switch runtime.GOOS {
	case "darwin":
		return "keychain"
	case "windows":
		return "credential-manager"
	default:
		return "secret-service"
	}
}

func (s *osStore) probe() error {
	if _, real := s.p.(goKeyring); real {
		if err := sessionBusMissing(); err != nil {
			return err
		}
	}
	_, err := s.Get(probeKey)
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return fmt.Errorf("keyring: no usable %s: %w", s.Backend(), err)
}

func (s *osStore) Get(key string) (string, error) {
	var v string
	err := s.bounded(func() error {
		var err error
		v, err = s.p.Get(s.service, key)
		return err
	})
	if errors.Is(err, gokeyring.ErrNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("keyring: get %q: %w", key, err)
	}
	return v, nil
}

func (s *osStore) Set(key, value string) error {
	if err := s.bounded(func() error { return s.p.Set(s.service, key, value) }); err != nil {
		return fmt.Errorf("keyring: set %q: %w", key, err)
	}
	return nil
}

func (s *osStore) Delete(key string) error {
	err := s.bounded(func() error { return s.p.Delete(s.service, key) })
	if err != nil && !errors.Is(err, gokeyring.ErrNotFound) {
		return fmt.Errorf("keyring: delete %q: %w", key, err)
	}
	return nil
}

// bounded runs f with the store's timeout. On a timeout the call is left
// running (go-keyring offers no way to cancel it); its result is discarded.
func (s *osStore) bounded(f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ErrTimeout
	}
}

// migrate moves secrets from an old fallback file into the OS keyring, then
// removes the file, so that a secret never lives in two places. moved is
// false when the secrets are still only in the file; an unreadable file
// counts as moved (there is nothing in it to keep).
func migrate(path string, to Store) (moved bool, err error) {
	m, err := (&FileStore{path: path}).load()
	if err != nil {
		return true, err
	}
	for k, v := range m {
		if err := to.Set(k, v); err != nil {
			return false, fmt.Errorf("keyring: move secrets from %s into the keyring: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, fmt.Errorf("keyring: secrets moved into the keyring but %s remains: %w", path, err)
	}
	return true, nil
}

// Diagnosis is what `detour doctor` reports about secrets storage.
type Diagnosis struct {
	Backend string `json:"backend"` // "secret-service", "keychain", "credential-manager" or "file"
	// Problem says why the OS keyring is not used; empty when it is.
	Problem string `json:"problem,omitempty"`
	// FallbackFile is the 0600 file, when it exists.
	FallbackFile string `json:"fallback_file,omitempty"`
}

// Diagnose probes the OS keyring as Open does, but changes nothing: it never
// moves secrets or writes the fallback file.
func Diagnose(dirs paths.Dirs) Diagnosis {
	return diagnose(dirs, options{provider: goKeyring{}, service: Service, timeout: DefaultTimeout})
}

func diagnose(dirs paths.Dirs, o options) Diagnosis {
	ks := &osStore{p: o.provider, service: o.service, timeout: o.timeout}
	d := Diagnosis{Backend: ks.Backend()}
	if err := ks.probe(); err != nil {
		d.Backend, d.Problem = "file", err.Error()
	}
	if p := filepath.Join(dirs.State, FileName); fileExists(p) {
		d.FallbackFile = p
	}
	return d
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// sessionBusMissing says plainly when there is no D-Bus session bus to find a
// Secret Service on. Without this check godbus would run dbus-launch, leaving
// a stray bus daemon behind on every headless machine the agent runs on.
func sessionBusMissing() error {
	switch runtime.GOOS {
	case "darwin", "windows":
		return nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		if fi, err := os.Stat(filepath.Join(rt, "bus")); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
	}
	return errors.New("keyring: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set), so no Secret Service")
}
