package reports

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

// TestRevokedDeviceMustEnrolAgain: when the hub's IT team revokes the code
// and its devices, the helper's next token request is refused; the helper
// then says so with code device-revoked, in its status and on every
// report, keeps saying so after a restart without asking the hub again, and
// a new enrolment clears it.
func TestRevokedDeviceMustEnrolAgain(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	h, r := enrolled(t, root)
	svc, err := h.OpenReports(ctx)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := svc.ListCodes(ctx, "org-a")
	if err != nil || len(codes) != 1 {
		t.Fatalf("codes: %v %v", codes, err)
	}
	if err := r.Refill(ctx); err != nil {
		t.Fatalf("refill before revocation: %v", err)
	}
	if _, err := svc.RevokeCode(ctx, codes[0].ID, true); err != nil {
		t.Fatal(err)
	}
	// Empty the stash so the next step must ask the hub.
	r.mu.Lock()
	st, _ := r.store.stash()
	st.Tokens = nil
	r.store.putStash(st)
	r.mu.Unlock()

	err = r.Refill(ctx)
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeDeviceRevoked || !strings.Contains(pe.Message, "enrolled again") {
		t.Fatalf("refill after revocation: %v, want code device-revoked", err)
	}
	s := r.Status()
	if !s.DeviceRevoked || s.LastError == nil || *s.LastError != RevokedMessage {
		t.Fatalf("status after revocation: %+v", s)
	}
	// A restart remembers it, and does not ask the hub again.
	r2 := newReporter(t, root, nil)
	if !r2.Revoked() || !r2.Status().DeviceRevoked {
		t.Fatal("a restarted helper forgot the revocation")
	}
	if err := r2.Refill(ctx); !errors.Is(err, ErrDeviceRevoked) {
		t.Fatalf("refill after restart: %v", err)
	}
	// A new code clears it.
	code, _, err := svc.CreateCode(ctx, "org-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Enrol(ctx, h.URL, code); err != nil {
		t.Fatal(err)
	}
	if r2.Revoked() || r2.Status().DeviceRevoked || r2.Status().LastError != nil {
		t.Fatalf("still revoked after enrolling again: %+v", r2.Status())
	}
	if err := r2.Refill(ctx); err != nil {
		t.Fatalf("refill after enrolling again: %v", err)
	}
}
