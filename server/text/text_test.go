package text

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name, s   string
		multiline bool
		ok        bool
	}{
		{"plain", "Zoom is approved", false, true},
		{"markup is text", `<script>alert("x")</script>`, false, true},
		{"Welsh and emoji", "Cymeradwywyd ✓ 👍", false, true},
		{"NUL", "a\x00b", false, false},
		{"NUL in a note", "a\x00b", true, false},
		{"ESC", "\x1b[31mred", true, false},
		{"DEL", "a\x7f", false, false},
		{"C1 CSI", "a\u009b31m", true, false},
		{"newline in one-line field", "a\nb", false, false},
		{"newline in a note", "a\nb\tc", true, true},
		{"bare CR in a note", "a\rb", true, false},
		{"invalid UTF-8", "a\xffb", true, false},
	}
	for _, c := range cases {
		err := Check("note", c.s, c.multiline)
		if (err == nil) != c.ok {
			t.Errorf("%s: Check(%q) = %v, want ok=%v", c.name, c.s, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrNotText) {
			t.Errorf("%s: error does not wrap ErrNotText: %v", c.name, err)
		}
	}
}

func TestNormalise(t *testing.T) {
	for in, want := range map[string]string{"a\r\nb": "a\nb", "a\rb": "a\nb", "a\nb": "a\nb", "ab": "ab", "\r\n\r\n": "\n\n"} {
		if got := Normalise(in); got != want {
			t.Errorf("Normalise(%q) = %q, want %q", in, got, want)
		}
		if err := Check("note", Normalise(in), true); err != nil {
			t.Errorf("normalised %q still refused: %v", in, err)
		}
	}
}
