package protocol_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

const examples = "examples"

func load(t *testing.T, kind string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examples, kind, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s examples: %v", kind, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

// Go types for each part of the protocol: a valid example must decode into
// them with no field left over, and re-encode to something the schema accepts.
var (
	paramTypes = map[string]func() any{
		"hello": func() any { return new(protocol.HelloParams) }, "status": func() any { return new(struct{}) },
		"diagnose": func() any { return new(protocol.DiagnoseParams) }, "suggest": func() any { return new(protocol.SuggestParams) },
		"report": func() any { return new(protocol.ReportParams) }, "settings": func() any { return new(protocol.SettingsParams) },
		"sync": func() any { return new(struct{}) }, "enrol": func() any { return new(protocol.EnrolParams) },
		"common": func() any { return new(protocol.CommonParams) },
	}
	resultTypes = map[string]func() any{
		"hello": func() any { return new(protocol.HelloResult) }, "status": func() any { return new(protocol.StatusResult) },
		"diagnose": func() any { return new(protocol.Verdict) }, "suggest": func() any { return new(protocol.SuggestResult) },
		"report": func() any { return new(protocol.ReportResult) }, "settings": func() any { return new(protocol.Settings) },
		"sync": func() any { return new(protocol.SyncResult) }, "enrol": func() any { return new(protocol.EnrolResult) },
		"common": func() any { return new(protocol.CommonResult) },
	}
	eventTypes = map[string]func() any{
		protocol.EventWhitelistUpdated: func() any { return new(protocol.WhitelistUpdated) },
		protocol.EventReportsChanged:   func() any { return new(protocol.ReportsChanged) },
		protocol.EventSettingsChanged:  func() any { return new(protocol.Settings) },
		protocol.EventEnrolmentChanged: func() any { return new(protocol.EnrolmentChanged) },
		protocol.EventServiceApproved:  func() any { return new(protocol.ServiceApproved) },
	}
)

func strictDecode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// withoutEnvelope drops id and type so that the rest decodes as params.
func withoutEnvelope(t *testing.T, b []byte) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "id")
	delete(m, "type")
	out, _ := json.Marshal(m)
	return out
}

func TestValidExamples(t *testing.T) {
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for name, b := range load(t, "valid") {
		t.Run(name, func(t *testing.T) {
			if err := set.ValidateMessage(b); err != nil {
				t.Fatalf("schema refuses a valid example: %v", err)
			}
			var env protocol.Envelope
			if err := json.Unmarshal(b, &env); err != nil {
				t.Fatal(err)
			}
			var (
				target any
				raw    []byte
				check  func([]byte) error
			)
			switch {
			case env.IsReply() && *env.OK:
				kinds["result"]++
				target, raw = resultTypes[env.Type](), env.Result
				check = func(b []byte) error { return set.ValidateResult(env.Type, b) }
			case env.IsReply():
				kinds["error"]++
				if env.Error == nil || env.Error.Code < 1 {
					t.Fatalf("error reply without an error: %s", b)
				}
				return
			case env.IsEvent():
				kinds["event"]++
				target, raw = eventTypes[env.Type](), env.Data
				check = func(b []byte) error {
					return set.ValidateMessage([]byte(`{"type":"` + env.Type + `","data":` + string(b) + `}`))
				}
			default:
				kinds["request"]++
				req, err := protocol.ParseRequest(b)
				if err != nil {
					t.Fatal(err)
				}
				target, raw = paramTypes[req.Type](), withoutEnvelope(t, b)
				check = func(p []byte) error {
					full := bytes.TrimSuffix(p, []byte("}"))
					if len(full) > 1 {
						full = append(full, ',')
					}
					full = append(full, []byte(`"id":1,"type":"`+req.Type+`"}`)...)
					return set.ValidateRequest(req.Type, full)
				}
			}
			if err := strictDecode(raw, target); err != nil {
				t.Fatalf("does not decode into %T: %v", target, err)
			}
			again, err := json.Marshal(target)
			if err != nil {
				t.Fatal(err)
			}
			if err := check(again); err != nil {
				t.Fatalf("%T re-encodes to %s, which the schema refuses: %v", target, again, err)
			}
		})
	}
	for _, k := range []string{"request", "result", "error", "event"} {
		if kinds[k] == 0 {
			t.Errorf("no valid example of a %s", k)
		}
	}
}

func TestInvalidExamples(t *testing.T) {
	set, err := protocol.Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range load(t, "invalid") {
		t.Run(name, func(t *testing.T) {
			var ex struct {
				Reason  string          `json:"reason"`
				Message json.RawMessage `json:"message"`
			}
			if err := strictDecode(b, &ex); err != nil || ex.Reason == "" || len(ex.Message) == 0 {
				t.Fatalf("an invalid example is {reason, message}: %v", err)
			}
			if err := set.ValidateMessage(ex.Message); err == nil {
				t.Fatalf("schema accepts an invalid example (%s)", ex.Reason)
			}
		})
	}
}

// TestEveryTypeHasExamples keeps the examples covering the whole protocol.
func TestEveryTypeHasExamples(t *testing.T) {
	valid := load(t, "valid")
	seen := map[string]bool{}
	for _, b := range valid {
		var env protocol.Envelope
		json.Unmarshal(b, &env)
		switch {
		case env.IsReply() && *env.OK:
			seen["result:"+env.Type] = true
		case env.IsEvent():
			seen["event:"+env.Type] = true
		case !env.IsReply():
			seen["request:"+env.Type] = true
		}
	}
	for _, typ := range protocol.RequestTypes {
		for _, k := range []string{"request:", "result:"} {
			if !seen[k+typ] {
				t.Errorf("no valid example of %s%s", k, typ)
			}
		}
	}
	for typ := range eventTypes {
		if !seen["event:"+typ] {
			t.Errorf("no valid example of event %s", typ)
		}
	}
}
