package cli

import (
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

func TestCheckEnrolment(t *testing.T) {
	for _, c := range []struct {
		name   string
		status *protocol.StatusResult
		want   bool
	}{
		{"agent not running", nil, false},
		{"enrolled", &protocol.StatusResult{Enrolled: true}, false},
		{"revoked", &protocol.StatusResult{Enrolled: true, Reports: protocol.ReportsStatus{DeviceRevoked: true}}, true},
	} {
		got := checkEnrolment(&DoctorEnv{Status: c.status})
		if (len(got) == 1) != c.want {
			t.Fatalf("%s: %+v", c.name, got)
		}
		if c.want && (got[0].Status != CheckFail || !strings.Contains(got[0].Detail, "revoked") || !strings.Contains(got[0].Fix, "detour enrol")) {
			t.Fatalf("%s: %+v", c.name, got[0])
		}
	}
}
