// Package text is the hub's one rule for the free text it accepts from
// people and files (names, notes, comments, contacts, reasons): valid UTF-8,
// and no control characters except a newline or tab where a field is meant
// to hold several lines. Markup and quotes are allowed and stored as given;
// whoever renders a value escapes it.
//
// The rule exists because the two databases differ: PostgreSQL refuses NUL
// in text and SQLite stores it, so without one check before storage the same
// input is a 500 on one hub and a stored landmine (an ESC sequence in a
// terminal, a NUL in an export) on another.
package text

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrNotText is wrapped by every refusal, so callers answer 400, not 500.
var ErrNotText = errors.New("not acceptable text")

// Check refuses invalid UTF-8 and control characters (C0, DEL and C1); a
// multiline field may hold newlines and tabs. field names the value in the
// error.
func Check(field, s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrNotText, field)
	}
	for _, r := range s {
		if isControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return fmt.Errorf("%w: %s contains the control character %U", ErrNotText, field, r)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) }

// Normalise turns the CRLF and lone CR line breaks a browser sends from a
// textarea into LF, so that a multiline value stores one kind of newline.
func Normalise(s string) string {
	if !strings.ContainsRune(s, '\r') {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}
