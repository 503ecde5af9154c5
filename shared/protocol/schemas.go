package protocol

// This file embeds the protocol's JSON Schemas (schema/*.json, the source of
// truth for every message) and compiles them for Go: the agent validates
// requests with them and the tests check the shared examples.

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schema/*.schema.json
var files embed.FS

// Base is the URI every schema's $id starts with.
const Base = "https://detour-project.org/schemas/protocol/"

// Files returns the schema files (schema/NAME.schema.json).
func Files() fs.FS { return files }

// Set is the compiled schemas.
type Set struct {
	message  *jsonschema.Schema
	requests map[string]*jsonschema.Schema
	results  map[string]*jsonschema.Schema
}

var (
	loadOnce sync.Once
	loaded   *Set
	loadErr  error
)

// Load compiles the embedded schemas once per process.
func Load() (*Set, error) {
	loadOnce.Do(func() { loaded, loadErr = compile() })
	return loaded, loadErr
}

func compile() (*Set, error) {
	c := jsonschema.NewCompiler()
	entries, err := fs.ReadDir(files, "schema")
	if err != nil {
		return nil, fmt.Errorf("protocol schemas: %w", err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(path.Join("schema", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("protocol schemas: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("protocol schemas: %s: %w", e.Name(), err)
		}
		if err := c.AddResource(Base+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("protocol schemas: %s: %w", e.Name(), err)
		}
	}
	s := &Set{requests: map[string]*jsonschema.Schema{}, results: map[string]*jsonschema.Schema{}}
	if s.message, err = c.Compile(Base + "message.schema.json"); err != nil {
		return nil, fmt.Errorf("protocol schemas: %w", err)
	}
	for _, t := range RequestTypes {
		if s.requests[t], err = c.Compile(Base + t + ".schema.json#/$defs/request"); err != nil {
			return nil, fmt.Errorf("protocol schemas: %w", err)
		}
		if s.results[t], err = c.Compile(Base + t + ".schema.json#/$defs/result"); err != nil {
			return nil, fmt.Errorf("protocol schemas: %w", err)
		}
	}
	return s, nil
}

// ValidateMessage checks any message: a request, a reply or an event.
func (s *Set) ValidateMessage(b []byte) error { return validate(s.message, b) }

// ValidateRequest checks a request of a type the schemas define; a type they
// do not define passes (its handler checks its own fields).
func (s *Set) ValidateRequest(typ string, b []byte) error {
	sch, ok := s.requests[typ]
	if !ok {
		return nil
	}
	return validate(sch, b)
}

// ValidateResult checks the result object of a reply to typ.
func (s *Set) ValidateResult(typ string, b []byte) error {
	sch, ok := s.results[typ]
	if !ok {
		return nil
	}
	return validate(sch, b)
}

func validate(sch *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(v)
}

// Brief turns a validation error into one line for an error reply: the
// innermost failure, without the schema's URL.
func Brief(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	return strings.TrimPrefix(last, "- ")
}
