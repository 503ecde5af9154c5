package agent

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/detour-project/detour/helper/localapi"
	"github.com/detour-project/detour/shared/protocol"
)

// The typed client against the real agent: Connect says hello once, and each
// method sends its request type with the protocol's types and decodes the
// agent's answer (or its error code).
func TestTypedClient(t *testing.T) {
	dirs := testDirs(t)
	runAgent(t, dirs, Options{Hub: "http://127.0.0.1:9"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: protocol.CallerTray})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	h := c.Hello()
	if h.Protocol != protocol.Version || !slices.Contains(h.Capabilities, "status") || h.Hub == nil || *h.Hub != "http://127.0.0.1:9" {
		t.Fatalf("hello = %+v", h)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Hub.URL == nil || st.Enrolled {
		t.Fatalf("status = %+v, %v", st, err)
	}
	on := true
	s, err := c.Settings(ctx, &protocol.SettingsChange{ReportAutomatically: &on})
	if err != nil || !s.ReportAutomatically {
		t.Fatalf("settings set = %+v, %v", s, err)
	}
	if s, err := c.Settings(ctx, nil); err != nil || !s.ReportAutomatically {
		t.Fatalf("settings read = %+v, %v", s, err)
	}
	sg, err := c.Suggest(ctx, protocol.SuggestParams{Host: "zoom.us"})
	if err != nil || sg.Service == nil || *sg.Service == "" {
		t.Fatalf("suggest = %+v, %v", sg, err)
	}
	if _, err := c.Suggest(ctx, protocol.SuggestParams{Host: ""}); protocol.AsError(err).Code != protocol.CodeInvalidParams {
		t.Fatalf("suggest without a host: %v, want invalid-params", err)
	}
	if _, err := c.Report(ctx, protocol.ReportParams{Host: "zoom.us", Need: "meeting"}); protocol.AsError(err).Code != protocol.CodeNotEnrolled {
		t.Fatalf("report before enrolment: %v, want not-enrolled", err)
	}
	// Nothing listens on port 9: the hub does not answer.
	if _, err := c.Sync(ctx); err == nil {
		t.Fatal("sync with an unreachable hub succeeded")
	}
	if _, err := c.Enrol(ctx, protocol.EnrolParams{Hub: "http://127.0.0.1:9", Code: "X"}); protocol.AsError(err).Code != protocol.CodeHubUnreachable {
		t.Fatalf("enrol with an unreachable hub: %v, want hub-unreachable", err)
	}
}

// Connect tells "no agent" (ErrNoAgent, callers fall back) from an agent
// that refuses the hello (not ErrNoAgent: a real fault to report).
func TestConnectErrors(t *testing.T) {
	dirs := testDirs(t)
	ctx := context.Background()
	if _, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs}); !errors.Is(err, localapi.ErrNoAgent) {
		t.Fatalf("no agent: %v, want ErrNoAgent", err)
	}
	runAgent(t, dirs, Options{})
	if _, err := localapi.Connect(ctx, localapi.Options{Dirs: dirs, Caller: "mosaic"}); err == nil || errors.Is(err, localapi.ErrNoAgent) || protocol.AsError(err).Code != protocol.CodeInvalidParams {
		t.Fatalf("bad caller: %v, want invalid-params and not ErrNoAgent", err)
	}
}

// Every request type the agent serves is in contract.json, which names its
// callers: the relay refuses a type the contract does not define, so a
// handler added without its contract entry could never be reached from a
// browser (and its callers would be nobody's decision).
func TestServedTypesAreInTheContract(t *testing.T) {
	dirs := testDirs(t)
	runAgent(t, dirs, Options{})
	c, err := localapi.Connect(context.Background(), localapi.Options{Dirs: dirs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, typ := range c.Hello().Capabilities {
		if err := protocol.CheckCaller(protocol.CallerCLI, typ); err != nil && err.Code == protocol.CodeUnknownType {
			if err := protocol.CheckCaller(protocol.CallerTray, typ); err != nil && err.Code == protocol.CodeUnknownType {
				t.Errorf("the agent serves %q, which shared/protocol/contract.json does not list (add it with its callers)", typ)
			}
		}
	}
}
