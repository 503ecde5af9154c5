package aggregates

import (
	"encoding/json"
	"testing"
)

func show(cs []Count) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestCount(t *testing.T) {
	cases := []struct {
		p    Privacy
		n    int64
		want string
	}{
		{Privacy{K: 5}, 0, "0"},
		{Privacy{K: 5}, 1, "fewer than 5"},
		{Privacy{K: 5}, 4, "fewer than 5"},
		{Privacy{K: 5}, 5, "5"},
		{Privacy{K: 5}, 123, "123"},
		{Privacy{}, 3, "fewer than 5"},
		{Privacy{K: 10, Round: true}, 9, "fewer than 10"},
		{Privacy{K: 10, Round: true}, 10, "10"},
		{Privacy{K: 10, Round: true}, 12, "10"},
		{Privacy{K: 10, Round: true}, 13, "15"},
		{Privacy{K: 5, Round: true}, 6, "5"},
		{Privacy{K: 7, Round: true}, 7, "7"}, // never rounded below k
		{Privacy{K: 1}, 1, "1"},
	}
	for _, c := range cases {
		if got := c.p.Count(c.n).String(); got != c.want {
			t.Errorf("%+v.Count(%d) = %q, want %q", c.p, c.n, got, c.want)
		}
	}
}

func TestCountJSON(t *testing.T) {
	p := Privacy{K: 5}
	b, _ := json.Marshal([]Count{p.Count(3), p.Count(7)})
	want := `[{"value":null,"suppressed":true,"display":"fewer than 5"},{"value":7,"suppressed":false,"display":"7"}]`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
}

func TestGroupSecondarySuppression(t *testing.T) {
	p := Privacy{K: 5}
	cases := []struct {
		name  string
		parts []int64
		want  []string
		total string
	}{
		{"nothing small", []int64{10, 20, 0}, []string{"10", "20", "0"}, "30"},
		// 40 - 30 would reveal the 3: the smallest visible part goes too.
		{"one small", []int64{30, 3, 7}, []string{"30", "fewer than 5", "fewer than 5"}, "40"},
		// 1 + 2 = 3 hidden is still under k.
		{"two small adding under k", []int64{50, 1, 2, 9}, []string{"50", "fewer than 5", "fewer than 5", "fewer than 5"}, "62"},
		// 3 + 4 = 7 hidden is enough on its own.
		{"two small adding to k", []int64{50, 3, 4, 9}, []string{"50", "fewer than 5", "fewer than 5", "9"}, "66"},
		{"small total hides all", []int64{1, 2}, []string{"fewer than 5", "fewer than 5"}, "fewer than 5"},
		{"zeros stay", []int64{0, 0, 8}, []string{"0", "0", "8"}, "8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var total int64
			for _, n := range c.parts {
				total += n
			}
			cs, tot := p.Group(c.parts, total)
			got := show(cs)
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("parts %v: got %v, want %v", c.parts, got, c.want)
				}
			}
			if tot.String() != c.total {
				t.Fatalf("total: got %s want %s", tot, c.total)
			}
			// Whatever is shown, total minus visible must be 0 or >= k.
			if !tot.Suppressed {
				rest := total
				for i, shown := range cs {
					if !shown.Suppressed {
						rest -= c.parts[i]
					}
				}
				if rest > 0 && rest < 5 {
					t.Fatalf("total minus visible parts reveals %d", rest)
				}
			}
		})
	}
}
