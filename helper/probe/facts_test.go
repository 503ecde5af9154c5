package probe

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
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

// TestFactCatalogsInStep: the extension's catalogs carry every fact: the
// English message is exactly the sentence here, and the Welsh one fills
// the same {name} placeholders.
func TestFactCatalogsInStep(t *testing.T) {
	load := func(lang string) map[string]struct {
		Message string `json:"message"`
	} {
		b, err := os.ReadFile("../../extension/_locales/" + lang + "/messages.json")
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	en, cy := load("en"), load("cy")
	ph := regexp.MustCompile(`\{[a-z]+\}`)
	names := func(s string) string {
		got := ph.FindAllString(s, -1)
		sort.Strings(got)
		return strings.Join(slices.Compact(got), ",")
	}
	for code, text := range FactText {
		key := "fact_" + strings.NewReplacer(".", "_", "-", "_").Replace(code)
		if en[key].Message != text {
			t.Errorf("en %s = %q, want %q", key, en[key].Message, text)
		}
		if cy[key].Message == "" || names(cy[key].Message) != names(text) {
			t.Errorf("cy %s = %q: placeholders %s, want %s", key, cy[key].Message, names(cy[key].Message), names(text))
		}
	}
	for key := range en {
		if code, ok := strings.CutPrefix(key, "fact_"); ok {
			found := false
			for c := range FactText {
				found = found || strings.NewReplacer(".", "_", "-", "_").Replace(c) == code
			}
			if !found {
				t.Errorf("catalog has %s, which no fact uses", key)
			}
		}
	}
}
