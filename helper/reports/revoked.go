package reports

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/detour-project/detour/shared/atomicfile"
	"github.com/detour-project/detour/shared/protocol"
)

// reasonDeviceRevoked is the hub's `reason` when it refuses a revoked
// device's token requests (server/reports.ReasonDeviceRevoked).
const reasonDeviceRevoked = "device-revoked"

// RevokedMessage is what the helper says, everywhere, once its IT team has
// revoked this device: plainly, what happened and what to do.
const RevokedMessage = "this device was revoked by its IT team and must be enrolled again: " +
	"ask them for a new enrolment code, then run `detour enrol --hub URL --code CODE`"

// ErrDeviceRevoked is returned, with protocol code device-revoked, by
// everything that would use a revoked device's credential.
var ErrDeviceRevoked = protocol.Errorf(protocol.CodeDeviceRevoked, "%s", RevokedMessage)

// revokedFile marks the device as revoked (reports/revoked): the mark
// outlives a restart, so the helper does not ask the hub again and again
// with a credential it knows is refused. Enrolling again removes it.
func (d diskStore) revokedFile() string { return filepath.Join(d.dir, "revoked") }

func (d diskStore) revoked() bool {
	_, err := os.Stat(d.revokedFile())
	return err == nil
}

func (d diskStore) setRevoked(on bool) error {
	if on {
		if err := atomicfile.Write(d.revokedFile(), []byte(RevokedMessage+"\n"), 0o600); err != nil {
			return fmt.Errorf("reports: mark revoked: %w", err)
		}
		return nil
	}
	if err := os.Remove(d.revokedFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reports: clear the revoked mark: %w", err)
	}
	return nil
}

// isRevocation says whether err is the hub refusing this device for good.
func isRevocation(err error) bool {
	var he *HubError
	if !errors.As(err, &he) || he.Status != 403 {
		return false
	}
	var reason string
	if raw, ok := he.Body["reason"]; ok {
		jsonInto(raw, &reason)
	}
	return reason == reasonDeviceRevoked
}

// Revoked says whether the hub revoked this device.
func (r *Reporter) Revoked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store.revoked()
}

// markRevoked records a revocation the hub just answered.
func (r *Reporter) markRevoked() error {
	r.mu.Lock()
	err := r.store.setRevoked(true)
	r.lastErr = RevokedMessage
	r.mu.Unlock()
	r.opts.Log.Warn("reports: the hub revoked this device; it must be enrolled again")
	r.changed()
	return err
}
