package probe

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/detour-project/detour/shared/protocol"
)

// TestFactCatalog: every code the judge can say has an English sentence,
// and every placeholder in a sentence is a value the judge supplies.
func TestFactCatalog(t *testing.T) {
	used := map[string]bool{}
	for _, f := range []string{"judge.go", "control.go"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`say\("([a-z0-9.-]+)"`).FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = true
		}
	}
	if len(used) < 60 {
		t.Fatalf("found only %d codes in the judge", len(used))
	}
	for c := range used {
		if _, ok := FactText[c]; !ok {
			t.Errorf("fact %q has no English sentence", c)
		}
	}
	for c, text := range FactText {
		if !regexp.MustCompile(`^[a-z0-9]+([.-][a-z0-9]+)*$`).MatchString(c) {
			t.Errorf("code %q does not fit the schema's pattern", c)
		}
		if strings.Count(text, "{") != strings.Count(text, "}") {
			t.Errorf("%s: unbalanced braces in %q", c, text)
		}
	}
	got := Render(protocol.Fact{Code: "dns.answer", Values: map[string]string{"resolver": "R", "addrs": "1.2.3.4", "host": "h"}})
	if got != "R answered 1.2.3.4 for h" {
		t.Errorf("Render = %q", got)
	}
}
