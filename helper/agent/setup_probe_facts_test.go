package agent

import (
	"testing"

	"github.com/detour-project/detour/helper/probe"
	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
)

// TestSignalFactsStayInStep: what the browser saw is added as a fact and its
// English sentence together, and settles a possible block only on specific
// evidence.
func TestSignalFactsStayInStep(t *testing.T) {
	possible := func() probe.Verdict {
		return probe.Verdict{Possible: true, Method: method.HTTPStatus, Confidence: 0.4,
			Evidence: []string{"the answer is 403"}, Facts: []protocol.Fact{{Code: "http.403-unknown"}}}
	}
	cases := []struct {
		name     string
		v        probe.Verdict
		sig      protocol.Signal
		blocked  bool
		possible bool
		code     string
	}{
		{"the browser saw the same 403", possible(), protocol.Signal{Status: 403}, false, true, "browser.status-agrees"},
		{"the browser's own policy", possible(), protocol.Signal{Error: "net::ERR_BLOCKED_BY_ADMINISTRATOR"}, true, false, "browser.error-policy"},
		{"redirected to a product's block host", possible(), protocol.Signal{Status: 302, RedirectHost: "block.opendns.com"}, true, false, "browser.redirect-blockpage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := withSignal(c.v, &c.sig)
			if v.Blocked != c.blocked || v.Possible != c.possible || len(v.Facts) != len(v.Evidence) {
				t.Fatalf("got %+v", v)
			}
			last := v.Facts[len(v.Facts)-1]
			if last.Code != c.code || v.Evidence[len(v.Evidence)-1] != probe.Render(last) {
				t.Errorf("last fact %+v / %q", last, v.Evidence[len(v.Evidence)-1])
			}
		})
	}
}
