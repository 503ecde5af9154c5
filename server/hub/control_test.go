package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/detour-project/detour/server/control"
)

// TestCapabilitiesAndControl: every hub says whether it offers the control
// measurement; only a hub started with --control serves it, for catalog
// hosts only.
func TestCapabilitiesAndControl(t *testing.T) {
	for _, offer := range []bool{false, true} {
		dialled := make(chan string, 4)
		cfg := Config{DataDir: t.TempDir(), Control: offer, ControlConfig: &control.Config{
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dialled <- addr
				return nil, errors.New("the outside world is not reachable from this test")
			},
		}}
		srv := serveHub(t, openHub(t, cfg))
		resp, body := get(t, srv.URL+"/api/v1/capabilities", nil)
		var caps map[string]bool
		if resp.StatusCode != 200 || json.Unmarshal(body, &caps) != nil || caps["control"] != offer {
			t.Fatalf("offer=%v: capabilities %d %s", offer, resp.StatusCode, body)
		}
		resp, body = get(t, srv.URL+"/api/v1/control?host=zoom.us", nil)
		if !offer {
			if resp.StatusCode == http.StatusOK {
				t.Errorf("a hub without --control answered: %s", body)
			}
			continue
		}
		var a control.Answer
		if resp.StatusCode != 200 || json.Unmarshal(body, &a) != nil || a.Host != "zoom.us" || a.Status != 0 || a.Error == "" {
			t.Errorf("control for a catalog host: %d %s", resp.StatusCode, body)
		}
		if got := <-dialled; got != "zoom.us:443" {
			t.Errorf("dialled %q", got)
		}
		if resp, _ = get(t, srv.URL+"/api/v1/control?host=intranet.corp.example", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("a host outside the catalog: %d", resp.StatusCode)
		}
	}
}
