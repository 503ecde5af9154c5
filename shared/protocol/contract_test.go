package protocol_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/detour-project/detour/shared/method"
	"github.com/detour-project/detour/shared/protocol"
	"github.com/detour-project/detour/shared/version"
)

// contract is what these tests read of contract.json (the generator,
// internal/gencontract, checks the whole file and writes the copies).
type word struct {
	Name string `json:"name"`
}

type contract struct {
	ProtocolVersion int `json:"protocol_version"`
	Methods         struct {
		Blocks    []word `json:"blocks"`
		NonBlocks []word `json:"non_blocks"`
	} `json:"methods"`
	Needs    []word   `json:"needs"`
	Browsers []string `json:"browsers"`
	Requests []struct {
		Type    string   `json:"type"`
		Callers []string `json:"callers"`
	} `json:"requests"`
	Events []struct {
		Type string `json:"type"`
	} `json:"events"`
	Errors []struct {
		Code int    `json:"code"`
		Name string `json:"name"`
	} `json:"errors"`
}

func readContract(t *testing.T) contract {
	t.Helper()
	b, err := os.ReadFile("contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var c contract
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("contract.json: %v", err)
	}
	return c
}

func (c contract) words(ws []word) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Name
	}
	return out
}

func (c contract) requests() []string {
	out := make([]string, len(c.Requests))
	for i, r := range c.Requests {
		out[i] = r.Type
	}
	return out
}

func (c contract) events() []string {
	out := make([]string, len(c.Events))
	for i, e := range c.Events {
		out[i] = e.Type
	}
	return out
}

func readSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("schema", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// at follows a path of object keys into a decoded JSON document; nil when
// the path is not there.
func at(doc any, path ...string) any {
	for _, k := range path {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		doc = m[k]
	}
	return doc
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("not an array: %v", v)
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		out[i], _ = x.(string)
	}
	return out
}

// walk calls f on every object in a decoded JSON document.
func walk(doc any, f func(map[string]any)) {
	switch v := doc.(type) {
	case map[string]any:
		f(v)
		for _, x := range v {
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

// TestContractMatchesGo checks the generated Go copies against contract.json
// (the generator's own test checks the files are what it writes; this one
// keeps the packages honest if a generated file is edited by hand and the
// generator test is skipped).
func TestContractMatchesGo(t *testing.T) {
	c := readContract(t)
	blocks, nonBlocks, needs := c.words(c.Methods.Blocks), c.words(c.Methods.NonBlocks), c.words(c.Needs)
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"protocol.Version", protocol.Version, c.ProtocolVersion},
		{"version.Protocol", version.Protocol, c.ProtocolVersion},
		{"method.Blocks", method.Blocks, blocks},
		{"method.NonBlocks", method.NonBlocks, nonBlocks},
		{"method.Needs", method.Needs, needs},
		{"protocol.Browsers", protocol.Browsers, c.Browsers},
		{"protocol.RequestTypes", protocol.RequestTypes, c.requests()},
		{"protocol.EventTypes", protocol.EventTypes, c.events()},
	} {
		if !jsonEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, contract.json says %v (run go generate ./shared/protocol)", tc.name, tc.got, tc.want)
		}
	}
	for _, e := range c.Errors {
		if protocol.ErrorNames[e.Code] != e.Name {
			t.Errorf("error %d: Go names it %q, contract.json %q", e.Code, protocol.ErrorNames[e.Code], e.Name)
		}
	}
	if len(protocol.ErrorNames) != len(c.Errors) {
		t.Errorf("Go has %d error codes, contract.json %d", len(protocol.ErrorNames), len(c.Errors))
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestSchemasFollowContract fails when a schema's enum of methods, needs,
// browsers, request types or event types, or the protocol version hello
// announces, differs from contract.json.
func TestSchemasFollowContract(t *testing.T) {
	c := readContract(t)
	blocks, needs, requests, events := c.words(c.Methods.Blocks), c.words(c.Needs), c.requests(), c.events()
	all := append(slices.Clone(blocks), c.words(c.Methods.NonBlocks)...)
	common := readSchema(t, "common.schema.json")
	// A report may name "unknown": the person reports a block the helper
	// could not classify.
	for _, tc := range []struct {
		name      string
		got, want []string
	}{
		{"common $defs.method", strs(t, at(common, "$defs", "method", "enum")), all},
		{"common $defs.blockMethod", strs(t, at(common, "$defs", "blockMethod", "enum")), append(slices.Clone(blocks), "unknown")},
		{"common $defs.need", strs(t, at(common, "$defs", "need", "enum")), needs},
		{"common $defs.browser", strs(t, at(common, "$defs", "browser", "enum")), c.Browsers},
	} {
		if !slices.Equal(tc.got, tc.want) {
			t.Errorf("schema %s = %v, contract.json says %v", tc.name, tc.got, tc.want)
		}
	}
	hello := readSchema(t, "hello.schema.json")
	if v, _ := at(hello, "$defs", "result", "properties", "protocol", "const").(float64); int(v) != c.ProtocolVersion {
		t.Errorf("hello result's protocol const = %v, contract.json says %d", v, c.ProtocolVersion)
	}

	// message.schema.json: every enum that names request or event types
	// lists them all, and its dispatch (if type = X then …) covers each.
	msg := readSchema(t, "message.schema.json")
	enums := 0
	var consts []string
	walk(msg, func(m map[string]any) {
		if e, ok := m["enum"].([]any); ok {
			got := strs(t, e)
			switch {
			case slices.Contains(got, "hello") || slices.Contains(got, requests[len(requests)-1]):
				enums++
				if !slices.Equal(got, requests) {
					t.Errorf("message.schema.json request-type enum = %v, contract.json says %v", got, requests)
				}
			case slices.Contains(got, events[0]):
				enums++
				if !slices.Equal(got, events) {
					t.Errorf("message.schema.json event-type enum = %v, contract.json says %v", got, events)
				}
			}
		}
		if ty, ok := at(m, "if", "properties", "type", "const").(string); ok {
			consts = append(consts, ty)
		}
	})
	if enums < 3 {
		t.Errorf("message.schema.json: found %d type enums, want the request, reply and event ones", enums)
	}
	want := append(append(slices.Clone(requests), requests...), events...)
	sort.Strings(want)
	sort.Strings(consts)
	if !slices.Equal(consts, want) {
		t.Errorf("message.schema.json dispatches on %v, want each request type twice (request, reply) and each event once: %v", consts, want)
	}
	// One schema file a request type, and the event schema names each event.
	for _, typ := range requests {
		s := readSchema(t, typ+".schema.json")
		if got := at(s, "$defs", "request", "properties", "type", "const"); got != typ {
			t.Errorf("%s.schema.json: request type const = %v", typ, got)
		}
	}
	var evConsts []string
	walk(readSchema(t, "events.schema.json"), func(m map[string]any) {
		if ty, ok := at(m, "properties", "type", "const").(string); ok {
			evConsts = append(evConsts, ty)
		}
	})
	sort.Strings(evConsts)
	sortedEvents := slices.Clone(events)
	sort.Strings(sortedEvents)
	if !slices.Equal(evConsts, sortedEvents) {
		t.Errorf("events.schema.json defines %v, contract.json %v", evConsts, sortedEvents)
	}
	if max := at(common, "$defs", "error", "properties", "code", "maximum").(float64); len(c.Errors) > int(max) {
		t.Errorf("%d error codes, but the error schema allows codes up to %v", len(c.Errors), max)
	}
}

// TestExampleErrorCodesKnown keeps the examples to codes the contract defines.
func TestExampleErrorCodesKnown(t *testing.T) {
	for name, b := range load(t, "valid") {
		var env protocol.Envelope
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			if _, ok := protocol.ErrorNames[env.Error.Code]; !ok {
				t.Errorf("%s: error code %d is not in contract.json", name, env.Error.Code)
			}
		}
	}
}

func TestCheckCaller(t *testing.T) {
	for _, tc := range []struct {
		caller, typ string
		code        int // 0: allowed
	}{
		{protocol.CallerBrowser, "hello", 0},
		{protocol.CallerBrowser, "report", 0},
		{protocol.CallerBrowser, "settings", 0},
		{protocol.CallerBrowser, "enrol", protocol.CodeLocalOnly},
		{protocol.CallerBrowser, "sync", protocol.CodeLocalOnly},
		{protocol.CallerCLI, "enrol", 0},
		{protocol.CallerTray, "sync", 0},
		{protocol.CallerTray, "enrol", protocol.CodeLocalOnly},
		{protocol.CallerBrowser, "launch-missiles", protocol.CodeUnknownType},
		{protocol.CallerBrowser, "", protocol.CodeUnknownType},
	} {
		err := protocol.CheckCaller(tc.caller, tc.typ)
		got := 0
		if err != nil {
			got = err.Code
		}
		if got != tc.code {
			t.Errorf("CheckCaller(%q, %q) = %v, want code %d", tc.caller, tc.typ, err, tc.code)
		}
	}
}
