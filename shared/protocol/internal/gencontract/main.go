// Command gencontract writes every copy of the protocol's vocabulary from
// shared/protocol/contract.json, the one source: the Go constants of
// shared/protocol, shared/method and shared/version, the extension's
// src/lib/contract.js, and the generated tables in PROTOCOL.md. It runs as
// `go generate ./shared/protocol`; its test fails when a generated file
// differs from what it would write, so no copy can be edited by hand.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Contract mirrors contract.json.
type Contract struct {
	About           string `json:"about"`
	ProtocolVersion int    `json:"protocol_version"`
	Methods         struct {
		Blocks    []Word `json:"blocks"`
		NonBlocks []Word `json:"non_blocks"`
	} `json:"methods"`
	Needs    []Word   `json:"needs"`
	Browsers []string `json:"browsers"`
	Callers  []Word   `json:"callers"`
	Requests []struct {
		Type    string   `json:"type"`
		Callers []string `json:"callers"`
	} `json:"requests"`
	Events []struct {
		Type string `json:"type"`
		Go   string `json:"go"`
	} `json:"events"`
	Errors []struct {
		Code    int    `json:"code"`
		Name    string `json:"name"`
		Go      string `json:"go"`
		Meaning string `json:"meaning"`
	} `json:"errors"`
}

// Word is a named entry with a meaning (and, for methods, its Go name).
type Word struct {
	Name    string `json:"name"`
	Go      string `json:"go,omitempty"`
	Meaning string `json:"meaning"`
}

// Source is contract.json's path from the repository root.
const Source = "shared/protocol/contract.json"

func main() {
	root, err := repoRoot()
	if err == nil {
		var files map[string][]byte
		files, err = Render(root)
		for path, b := range files {
			if err != nil {
				break
			}
			err = os.WriteFile(filepath.Join(root, path), b, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gencontract:", err)
		os.Exit(1)
	}
}

// repoRoot walks up from the working directory to the folder with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Load reads and checks contract.json.
func Load(root string) (*Contract, error) {
	b, err := os.ReadFile(filepath.Join(root, Source))
	if err != nil {
		return nil, err
	}
	var c Contract
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", Source, err)
	}
	return &c, c.check()
}

var (
	goName  = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	wire    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	codeGo  = regexp.MustCompile(`^Code[A-Z][A-Za-z0-9]*$`)
	eventGo = regexp.MustCompile(`^Event[A-Z][A-Za-z0-9]*$`)
)

// check refuses a contract that would generate broken or ambiguous code:
// codes must count up from 1 with no gap (they are only appended), names
// must be unique, and every request's callers must be declared.
func (c *Contract) check() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(Source+": "+f, a...)) }
	if c.ProtocolVersion < 1 {
		bad("protocol_version must be 1 or more")
	}
	seen := map[string]bool{}
	uniq := func(kind, s string, re *regexp.Regexp) {
		if !re.MatchString(s) {
			bad("%s %q is not a valid name", kind, s)
		}
		if seen[kind+" "+s] {
			bad("%s %q appears twice", kind, s)
		}
		seen[kind+" "+s] = true
	}
	for _, w := range append(append([]Word{}, c.Methods.Blocks...), c.Methods.NonBlocks...) {
		uniq("method", w.Name, wire)
		uniq("method Go name", w.Go, goName)
	}
	for _, w := range c.Needs {
		uniq("need", w.Name, wire)
	}
	for _, b := range c.Browsers {
		uniq("browser", b, wire)
	}
	callers := map[string]bool{}
	for _, w := range c.Callers {
		uniq("caller", w.Name, wire)
		callers[w.Name] = true
	}
	for _, r := range c.Requests {
		uniq("request", r.Type, wire)
		if len(r.Callers) == 0 {
			bad("request %q names no caller", r.Type)
		}
		for _, k := range r.Callers {
			if !callers[k] {
				bad("request %q names undeclared caller %q", r.Type, k)
			}
		}
	}
	for _, e := range c.Events {
		uniq("event", e.Type, wire)
		uniq("event Go name", e.Go, eventGo)
	}
	for i, e := range c.Errors {
		if e.Code != i+1 {
			bad("error %q has code %d; codes count up from 1 with no gap", e.Name, e.Code)
		}
		uniq("error", e.Name, wire)
		uniq("error Go name", e.Go, codeGo)
		if e.Meaning == "" {
			bad("error %d has no meaning", e.Code)
		}
	}
	return errors.Join(errs...)
}

// Render returns every generated file, by path from the repository root.
func Render(root string) (map[string][]byte, error) {
	c, err := Load(root)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for path, f := range map[string]func(*Contract) string{
		"shared/protocol/contract_gen.go": protocolGo,
		"shared/method/method_gen.go":     methodGo,
		"shared/version/protocol_gen.go":  versionGo,
	} {
		b, err := format.Source([]byte(f(c)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[path] = b
	}
	out["extension/src/lib/contract.js"] = []byte(contractJS(c))
	md, err := os.ReadFile(filepath.Join(root, "shared/protocol/PROTOCOL.md"))
	if err != nil {
		return nil, err
	}
	for _, s := range []struct{ name, body string }{{"requests", requestsTable(c)}, {"errors", errorsTable(c)}} {
		if md, err = replaceSection(md, s.name, s.body); err != nil {
			return nil, fmt.Errorf("PROTOCOL.md: %w", err)
		}
	}
	out["shared/protocol/PROTOCOL.md"] = md
	return out, nil
}

const goHeader = "// Code generated by gencontract from shared/protocol/contract.json; DO NOT EDIT.\n\n"

func protocolGo(c *Contract) string {
	var b strings.Builder
	b.WriteString(goHeader + "package protocol\n\n")
	fmt.Fprintf(&b, "// Version is the protocol version this build speaks; hello refuses any other\n// with CodeBadVersion.\nconst Version = %d\n\n", c.ProtocolVersion)
	b.WriteString("// Error codes. Only ever appended; PROTOCOL.md lists them.\nconst (\n")
	for _, e := range c.Errors {
		fmt.Fprintf(&b, "\t%s = %d // %s\n", e.Go, e.Code, e.Meaning)
	}
	b.WriteString(")\n\n// ErrorNames maps each error code to its name in PROTOCOL.md.\nvar ErrorNames = map[int]string{\n")
	for _, e := range c.Errors {
		fmt.Fprintf(&b, "\t%s: %q,\n", e.Go, e.Name)
	}
	b.WriteString("}\n\n// RequestTypes are the request types of the protocol, in the order the\n// schemas and PROTOCOL.md list them.\nvar RequestTypes = []string{")
	for i, r := range c.Requests {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", r.Type)
	}
	b.WriteString("}\n\n// Callers: who may send a request (see CheckCaller).\nconst (\n")
	for _, w := range c.Callers {
		fmt.Fprintf(&b, "\tCaller%s = %q // %s\n", exported(w.Name), w.Name, w.Meaning)
	}
	b.WriteString(")\n\n// requestCallers lists, for each request type, the callers that may send it.\nvar requestCallers = map[string][]string{\n")
	for _, r := range c.Requests {
		fmt.Fprintf(&b, "\t%q: {", r.Type)
		for i, k := range r.Callers {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "Caller%s", exported(k))
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n\n// Browsers are the values hello's `browser` may take.\nvar Browsers = []string{")
	for i, s := range c.Browsers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteString("}\n\n// Event types the agent pushes.\nconst (\n")
	for _, e := range c.Events {
		fmt.Fprintf(&b, "\t%s = %q\n", e.Go, e.Type)
	}
	b.WriteString(")\n\n// EventTypes lists every event type.\nvar EventTypes = []string{")
	for i, e := range c.Events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.Go)
	}
	b.WriteString("}\n")
	return b.String()
}

func methodGo(c *Contract) string {
	var b strings.Builder
	b.WriteString(goHeader + "package method\n\n")
	words := func(doc string, ws []Word) {
		b.WriteString(doc + "\nconst (\n")
		for _, w := range ws {
			fmt.Fprintf(&b, "\t%s = %q // %s\n", w.Go, w.Name, w.Meaning)
		}
		b.WriteString(")\n\n")
	}
	list := func(doc, name string, ws []Word) {
		fmt.Fprintf(&b, "%s\nvar %s = []string{", doc, name)
		for i, w := range ws {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(w.Go)
		}
		b.WriteString("}\n\n")
	}
	words("// Block methods: the organisation's network or browser stopped the request.", c.Methods.Blocks)
	words("// Non-block reasons: a verdict that is not a block says why.", c.Methods.NonBlocks)
	list("// Blocks lists every block method, in the order the dashboard shows them.", "Blocks", c.Methods.Blocks)
	list("// NonBlocks lists every reason a failure is not a block.", "NonBlocks", c.Methods.NonBlocks)
	b.WriteString("// Needs are the reasons a person may give for needing a blocked service.\nvar Needs = []string{")
	for i, w := range c.Needs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", w.Name)
	}
	b.WriteString("}\n")
	return b.String()
}

func versionGo(c *Contract) string {
	return fmt.Sprintf(goHeader+"package version\n\n// Protocol is the native-messaging protocol version; a peer with another\n// version is refused with CodeBadVersion.\nconst Protocol = %d\n", c.ProtocolVersion)
}

func contractJS(c *Contract) string {
	var b strings.Builder
	b.WriteString("// Generated by gencontract from shared/protocol/contract.json; do not edit.\n// Run `go generate ./shared/protocol` after changing the contract.\n\n")
	fmt.Fprintf(&b, "export const PROTOCOL_VERSION = %d;\n\n", c.ProtocolVersion)
	names := func(ws []Word) string {
		q := make([]string, len(ws))
		for i, w := range ws {
			q[i] = fmt.Sprintf("'%s'", w.Name)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	fmt.Fprintf(&b, "// Block methods and the reasons a failure is not a block.\nexport const BLOCKS = Object.freeze(%s);\n", names(c.Methods.Blocks))
	fmt.Fprintf(&b, "export const NON_BLOCKS = Object.freeze(%s);\n\n", names(c.Methods.NonBlocks))
	fmt.Fprintf(&b, "// Why a person needed a blocked service.\nexport const NEEDS = Object.freeze(%s);\n\n", names(c.Needs))
	b.WriteString("// Error codes the helper answers with (PROTOCOL.md).\nexport const CODES = Object.freeze({\n")
	for _, e := range c.Errors {
		fmt.Fprintf(&b, "  %s: %d,\n", strings.ToUpper(strings.ReplaceAll(e.Name, "-", "_")), e.Code)
	}
	b.WriteString("});\n\n// Request types an extension may send through the relay.\nexport const BROWSER_REQUESTS = Object.freeze([")
	first := true
	for _, r := range c.Requests {
		for _, k := range r.Callers {
			if k == "browser" {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "'%s'", r.Type)
			}
		}
	}
	b.WriteString("]);\n")
	return b.String()
}

func requestsTable(c *Contract) string {
	var b strings.Builder
	b.WriteString("| type | who may send it |\n|---|---|\n")
	for _, r := range c.Requests {
		ks := make([]string, len(r.Callers))
		for i, k := range r.Callers {
			ks[i] = k
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", r.Type, strings.Join(ks, ", "))
	}
	b.WriteString("\nCallers: ")
	for i, w := range c.Callers {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "`%s`, %s", w.Name, w.Meaning)
	}
	b.WriteString(".\n")
	return b.String()
}

func errorsTable(c *Contract) string {
	var b strings.Builder
	b.WriteString("| code | name | meaning |\n|---|---|---|\n")
	for _, e := range c.Errors {
		fmt.Fprintf(&b, "| %d | %s | %s |\n", e.Code, e.Name, e.Meaning)
	}
	return b.String()
}

// replaceSection swaps what lies between <!-- BEGIN contract:NAME --> and
// <!-- END contract:NAME --> for body.
func replaceSection(doc []byte, name, body string) ([]byte, error) {
	begin := []byte("<!-- BEGIN contract:" + name + " (generated from contract.json by go generate ./shared/protocol; do not edit) -->\n")
	end := []byte("<!-- END contract:" + name + " -->")
	i := bytes.Index(doc, begin)
	j := bytes.Index(doc, end)
	if i < 0 || j < i {
		return nil, fmt.Errorf("no %q … %q section", strings.TrimSpace(string(begin)), end)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(begin)])
	out.WriteString(body)
	out.Write(doc[j:])
	return out.Bytes(), nil
}

// exported turns a wire name into a Go identifier part: "cli" → "CLI".
func exported(s string) string {
	switch s {
	case "cli":
		return "CLI"
	}
	var b strings.Builder
	for _, p := range strings.Split(s, "-") {
		if p != "" {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	return b.String()
}
