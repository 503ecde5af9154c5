package winipc

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	const sid = "S-1-5-21-1-2-3-1001"
	for _, tc := range []struct {
		name, scope, want string
	}{
		{"default", "", `\\.\pipe\detour-S-1-5-21-1-2-3-1001`},
		{"scoped", `C:\tmp\a\run`, `\\.\pipe\detour-S-1-5-21-1-2-3-1001-`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PipeName(sid, tc.scope)
			if tc.scope == "" && got != tc.want {
				t.Fatalf("PipeName = %q, want %q", got, tc.want)
			}
			if tc.scope != "" && (!strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+8) {
				t.Fatalf("PipeName = %q, want %q and 8 hex digits", got, tc.want)
			}
		})
	}
	// A scope is folded for case, as Windows paths are.
	if PipeName(sid, `C:\A`) != PipeName(sid, `c:\a`) {
		t.Fatal("scopes differing only in case got different pipes")
	}
	if PipeName(sid, `C:\A`) == PipeName(sid, `C:\B`) {
		t.Fatal("two scopes share a pipe")
	}
	if got := LockName(PipeName(sid, ""), "agent"); got != `Local\detour-S-1-5-21-1-2-3-1001-agent` {
		t.Fatalf("LockName = %q", got)
	}
	if got := OwnerOnlySDDL(sid); got != "O:"+sid+"D:P(A;;GA;;;"+sid+")" {
		t.Fatalf("OwnerOnlySDDL = %q", got)
	}
}
