// Package statefile gives each of the helper's state files a schema version
// and a migration step per version, as Syncthing does for its config and the
// hub's store does for its tables: a file says which schema wrote it, an
// older file is brought forward one step at a time when read, and a file
// from a newer Detour is refused rather than misread or overwritten.
//
// A file is a JSON object with its version under "schema". A file with no
// such field was written before versions existed and is version 0.
package statefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Field is the key that holds a file's schema version.
const Field = "schema"

// ErrNewer is returned (wrapped) for a file written by a newer schema than
// this build knows: it is left untouched.
var ErrNewer = errors.New("written by a newer version of Detour")

// Step brings a file from version To-1 to version To, working on the
// file's top-level fields (Field excluded).
type Step struct {
	To int
	// Why says what changed in this version, for the reader of the code.
	Why   string
	Apply func(fields map[string]json.RawMessage) error
}

// Format is one kind of state file: its name (for errors), and the steps
// from version 0 to the current one, Steps[i].To == i+1. The current version
// is len(Steps).
type Format struct {
	Name  string
	Steps []Step
	// Compact writes one line rather than indented JSON (for large files
	// nobody reads by hand, such as the whitelist cache).
	Compact bool
}

// Version is the schema this build writes.
func (f Format) Version() int { return len(f.Steps) }

// Decode reads b into v, first migrating it step by step from the version
// it says to the current one. It reports whether any step ran, so that the
// caller can write the file back in the current schema.
func (f Format) Decode(b []byte, v any) (migrated bool, err error) {
	for i, s := range f.Steps {
		if s.To != i+1 {
			return false, fmt.Errorf("%s: migration step %d goes to version %d", f.Name, i, s.To)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return false, fmt.Errorf("%s: not a JSON object: %w", f.Name, err)
	}
	if fields == nil {
		return false, fmt.Errorf("%s: not a JSON object", f.Name)
	}
	version := 0
	if raw, ok := fields[Field]; ok {
		if err := json.Unmarshal(raw, &version); err != nil || version < 0 {
			return false, fmt.Errorf("%s: %s is %s, not a version number", f.Name, Field, raw)
		}
		delete(fields, Field)
	}
	if version > f.Version() {
		return false, fmt.Errorf("%s: schema %d: %w (this one reads up to schema %d)", f.Name, version, ErrNewer, f.Version())
	}
	for _, s := range f.Steps[version:] {
		if err := s.Apply(fields); err != nil {
			return false, fmt.Errorf("%s: migrate to schema %d: %w", f.Name, s.To, err)
		}
		migrated = true
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, fmt.Errorf("%s: %w", f.Name, err)
	}
	return migrated, nil
}

// Encode writes v (which must encode as a JSON object), indented unless
// Compact, with the current schema version first, and a final newline.
func (f Format) Encode(v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", f.Name, err)
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("%s: encode: not a JSON object", f.Name)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, `{%q:%d`, Field, f.Version())
	if inner := bytes.TrimSpace(body[1 : len(body)-1]); len(inner) > 0 {
		out.WriteByte(',')
		out.Write(inner)
	}
	out.WriteByte('}')
	if f.Compact {
		out.WriteByte('\n')
		return out.Bytes(), nil
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("%s: encode: %w", f.Name, err)
	}
	pretty.WriteByte('\n')
	return pretty.Bytes(), nil
}

// Stamp is the step to version 1 of every helper state file: files written
// before schema versions had the same fields, so it only records the version.
func Stamp(map[string]json.RawMessage) error { return nil }

// Rename is a step helper that moves a field to a new name (if present and
// the new name is not already set).
func Rename(from, to string) func(map[string]json.RawMessage) error {
	return func(fields map[string]json.RawMessage) error {
		if v, ok := fields[from]; ok {
			if _, taken := fields[to]; !taken {
				fields[to] = v
			}
			delete(fields, from)
		}
		return nil
	}
}
