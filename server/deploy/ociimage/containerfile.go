// Package ociimage builds the hub's container image from
// server/deploy/Containerfile without a container engine: an OCI image
// layout (one reproducible layer), archived as a tar that `podman load`,
// `docker load` (25 and later) and `skopeo copy oci-archive:` accept.
//
// The Containerfile stays the one source: this package reads the subset of
// instructions the hub's image uses (FROM scratch, COPY [--chown], USER,
// ENV, EXPOSE, ENTRYPOINT in exec form) and refuses anything else, so an
// instruction added there is never silently left out of the built image.
package ociimage

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Spec is what a Containerfile asks for.
type Spec struct {
	Copies     []Copy
	User       string
	Env        []string // KEY=value, in order
	Exposed    []string // "8080/tcp"
	Entrypoint []string
}

// Copy is one COPY: a file from the build context into the image.
type Copy struct {
	Src, Dest string
	UID, GID  int
}

// Parse reads a Containerfile.
func Parse(r io.Reader) (*Spec, error) {
	s := &Spec{}
	sawFrom := false
	sc := bufio.NewScanner(r)
	var line string
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		if line == "" && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		line = ""
		var err error
		switch strings.ToUpper(instr) {
		case "FROM":
			if args != "scratch" {
				err = fmt.Errorf("FROM %s: only FROM scratch is built here (the hub is one static binary)", args)
			}
			sawFrom = true
		case "COPY":
			err = s.parseCopy(args)
		case "USER":
			s.User = args
		case "ENV":
			err = s.parseEnv(args)
		case "EXPOSE":
			for _, p := range strings.Fields(args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				s.Exposed = append(s.Exposed, p)
			}
		case "ENTRYPOINT":
			if e := json.Unmarshal([]byte(args), &s.Entrypoint); e != nil || len(s.Entrypoint) == 0 {
				err = fmt.Errorf("ENTRYPOINT must be in exec form, a JSON array: %s", args)
			}
		default:
			err = fmt.Errorf("%s is not an instruction this builder knows; build with podman or docker, or teach server/deploy/ociimage", instr)
		}
		if err == nil && !sawFrom {
			err = fmt.Errorf("%s before FROM", instr)
		}
		if err != nil {
			return nil, fmt.Errorf("ociimage: Containerfile line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ociimage: Containerfile: %w", err)
	}
	if line != "" {
		return nil, fmt.Errorf("ociimage: Containerfile ends inside a continued line")
	}
	if len(s.Entrypoint) == 0 {
		return nil, fmt.Errorf("ociimage: Containerfile has no ENTRYPOINT")
	}
	return s, nil
}

func (s *Spec) parseCopy(args string) error {
	f := strings.Fields(args)
	c := Copy{}
	for len(f) > 0 && strings.HasPrefix(f[0], "--") {
		v, ok := strings.CutPrefix(f[0], "--chown=")
		if !ok {
			return fmt.Errorf("COPY %s: only --chown=UID:GID is supported", f[0])
		}
		u, g, _ := strings.Cut(v, ":")
		var e1, e2 error
		c.UID, e1 = strconv.Atoi(u)
		c.GID, e2 = strconv.Atoi(g)
		if e1 != nil || e2 != nil {
			return fmt.Errorf("COPY --chown=%s: want numeric UID:GID (an empty base has no /etc/passwd)", v)
		}
		f = f[1:]
	}
	if len(f) != 2 || !strings.HasPrefix(f[1], "/") || strings.HasSuffix(f[1], "/") {
		return fmt.Errorf("COPY %s: want one source file and an absolute destination file", args)
	}
	c.Src, c.Dest = f[0], f[1]
	s.Copies = append(s.Copies, c)
	return nil
}

func (s *Spec) parseEnv(args string) error {
	for _, kv := range strings.Fields(args) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("ENV %s: want KEY=value (values without spaces)", kv)
		}
		s.Env = append(s.Env, kv)
	}
	return nil
}
