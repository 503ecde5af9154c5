package aggregates

import (
	"testing"
	"time"
)

// cover must split any window into aligned runs that touch every day of it
// once and nothing outside it, in few pieces.
func TestCover(t *testing.T) {
	day := func(n int) string {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n).Format(time.DateOnly)
	}
	type tc struct {
		name      string
		w         Window
		maxPieces int
	}
	var cases []tc
	for off := range 64 { // a 30-day window starting on every alignment of the widest run and then some
		cases = append(cases, tc{"30 days from " + day(off), Window{day(off), day(off + 29)}, 8})
	}
	cases = append(cases,
		tc{"one day", Window{day(3), day(3)}, 1},
		tc{"7 days", Window{day(5), day(11)}, 4},
		tc{"90 days", Window{day(1), day(90)}, 10},
		tc{"a year", Window{day(0), day(364)}, 20},
		tc{"empty", Window{day(5), day(4)}, 0},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			days, spans, err := cover(c.w)
			if err != nil {
				t.Fatal(err)
			}
			from, _ := dayNumber(c.w.From)
			to, _ := dayNumber(c.w.To)
			seen := map[int]int{}
			for _, d := range days {
				n, _ := dayNumber(d)
				seen[n]++
			}
			for _, s := range spans {
				n, err := dayNumber(s.start)
				if err != nil {
					t.Fatal(err)
				}
				if n%s.width != 0 {
					t.Errorf("run %+v is not aligned", s)
				}
				for i := range s.width {
					seen[n+i]++
				}
			}
			for n, k := range seen {
				if n < from || n > to || k != 1 {
					t.Errorf("day %s covered %d times (window %+v)", dayName(n), k, c.w)
				}
			}
			if want := max(0, to-from+1); len(seen) != want {
				t.Errorf("%d days covered, want %d", len(seen), want)
			}
			if pieces := len(days) + len(spans); pieces > c.maxPieces {
				t.Errorf("%d pieces, want at most %d: days %v, runs %+v", pieces, c.maxPieces, days, spans)
			}
		})
	}
}

func TestSpansOf(t *testing.T) {
	for _, c := range []struct {
		day  string
		want []span
	}{
		{"1970-01-01", []span{{2, "1970-01-01"}, {4, "1970-01-01"}, {8, "1970-01-01"}, {16, "1970-01-01"}, {32, "1970-01-01"}}},
		// 2026-11-22 is day 20779: 20779 % 2 = 1, % 4 = 3, % 8 = 3, % 16 = 11, % 32 = 11.
		{"2026-11-22", []span{{2, "2026-11-21"}, {4, "2026-11-19"}, {8, "2026-11-19"}, {16, "2026-11-11"}, {32, "2026-11-11"}}},
	} {
		got, err := spansOf(c.day)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s: %+v", c.day, got)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: run %d is %+v, want %+v", c.day, i, got[i], c.want[i])
			}
		}
	}
	if _, err := spansOf("2026-13-01"); err == nil {
		t.Error("a day that does not exist was given runs")
	}
}
