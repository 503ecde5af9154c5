package statefile

import (
	"errors"
	"strings"
	"testing"
)

// A format with two steps: version 1 stamps files from before versions,
// version 2 renamed "paused" to "paused_until".
var testFormat = Format{Name: "test state", Steps: []Step{
	{To: 1, Why: "versions begin", Apply: Stamp},
	{To: 2, Why: "paused became paused_until", Apply: Rename("paused", "paused_until")},
}}

type testState struct {
	Hub         string `json:"hub"`
	PausedUntil string `json:"paused_until"`
}

func TestDecodeMigrates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     string
		want     testState
		migrated bool
		err      string
	}{
		{"before versions", `{"hub":"h","paused":"p"}`, testState{"h", "p"}, true, ""},
		{"version 1", `{"schema":1,"hub":"h","paused":"p"}`, testState{"h", "p"}, true, ""},
		{"current", `{"schema":2,"hub":"h","paused_until":"p"}`, testState{"h", "p"}, false, ""},
		{"rename keeps a value already there", `{"schema":1,"paused":"old","paused_until":"new"}`, testState{"", "new"}, true, ""},
		{"newer", `{"schema":3,"hub":"h"}`, testState{}, false, "newer version of Detour"},
		{"bad version", `{"schema":"two"}`, testState{}, false, "not a version number"},
		{"negative version", `{"schema":-1}`, testState{}, false, "not a version number"},
		{"not an object", `[1,2]`, testState{}, false, "not a JSON object"},
		{"null", `null`, testState{}, false, "not a JSON object"},
		{"wrong field type", `{"schema":2,"hub":5}`, testState{}, false, "test state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got testState
			migrated, err := testFormat.Decode([]byte(tc.file), &got)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || migrated != tc.migrated {
				t.Fatalf("got %+v migrated=%v err=%v, want %+v migrated=%v", got, migrated, err, tc.want, tc.migrated)
			}
		})
	}
	if _, err := testFormat.Decode([]byte(`{"schema":9}`), &testState{}); !errors.Is(err, ErrNewer) {
		t.Fatalf("newer file: %v, want ErrNewer", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	b, err := testFormat.Encode(testState{Hub: "h", PausedUntil: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "{\n  \"schema\": 2,\n") {
		t.Fatalf("encoded %s, want the schema first", b)
	}
	var back testState
	if migrated, err := testFormat.Decode(b, &back); err != nil || migrated || back != (testState{"h", "p"}) {
		t.Fatalf("round trip: %+v migrated=%v err=%v", back, migrated, err)
	}
	compact := testFormat
	compact.Compact = true
	if b, err := compact.Encode(testState{Hub: "h"}); err != nil || string(b) != `{"schema":2,"hub":"h","paused_until":""}`+"\n" {
		t.Fatalf("compact: %q, %v", b, err)
	}
	if _, err := testFormat.Encode([]int{1}); err == nil {
		t.Fatal("encoding a non-object succeeded")
	}
	bad := Format{Name: "bad", Steps: []Step{{To: 2, Apply: Stamp}}}
	if _, err := bad.Decode([]byte(`{}`), &back); err == nil {
		t.Fatal("a misnumbered step was accepted")
	}
}
