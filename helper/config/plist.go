package config

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// ParsePlist decodes a property list, XML or binary ("bplist00"), into Go
// values: map[string]any, []any, string, int64, float64, bool, []byte and
// time.Time. macOS writes managed preferences (what a .mobileconfig sets) as
// property lists, binary or XML as the MDM chose, so both are read here,
// without cgo or macOS, and tested on any machine.
func ParsePlist(b []byte) (any, error) {
	if len(b) > maxPlistBytes {
		return nil, fmt.Errorf("plist: %d bytes is more than the %d a policy may have", len(b), maxPlistBytes)
	}
	if bytes.HasPrefix(b, []byte("bplist00")) {
		return parseBinaryPlist(b)
	}
	return parseXMLPlist(b)
}

// Limits against a hostile or broken file: a policy is a few keys.
const (
	maxPlistBytes = 1 << 20
	maxPlistDepth = 32
)

// plistEpoch is where plist dates count from.
var plistEpoch = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// ---- XML ----

func parseXMLPlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// Plists declare an Apple DTD; no entity beyond XML's own is needed.
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("plist: no <plist> element: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("plist: root element <%s>, want <plist>", se.Name.Local)
			}
			break
		}
	}
	v, end, err := xmlValue(d, 0)
	if err != nil {
		return nil, err
	}
	if end {
		return nil, errors.New("plist: <plist> holds no value")
	}
	return v, nil
}

// xmlValue reads the next value element; end is true at a closing tag (the
// end of the enclosing array, dict or plist).
func xmlValue(d *xml.Decoder, depth int) (v any, end bool, err error) {
	if depth > maxPlistDepth {
		return nil, false, errors.New("plist: nested too deeply")
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, false, fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, true, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, false, fmt.Errorf("plist: text %q outside a value", bytes.TrimSpace(t))
			}
		case xml.StartElement:
			v, err := xmlElement(d, t, depth)
			return v, false, err
		}
	}
}

func xmlElement(d *xml.Decoder, se xml.StartElement, depth int) (any, error) {
	name := se.Name.Local
	switch name {
	case "dict":
		m := map[string]any{}
		for {
			tok, err := nextStart(d)
			if err != nil {
				return nil, err
			}
			if tok == nil {
				return m, nil
			}
			if tok.Name.Local != "key" {
				return nil, fmt.Errorf("plist: <%s> in a dict where a <key> belongs", tok.Name.Local)
			}
			k, err := xmlText(d)
			if err != nil {
				return nil, err
			}
			v, end, err := xmlValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			if end {
				return nil, fmt.Errorf("plist: key %q has no value", k)
			}
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("plist: key %q twice", k)
			}
			m[k] = v
		}
	case "array":
		a := []any{}
		for {
			v, end, err := xmlValue(d, depth+1)
			if err != nil {
				return nil, err
			}
			if end {
				return a, nil
			}
			a = append(a, v)
		}
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		return name == "true", nil
	}
	s, err := xmlText(d)
	if err != nil {
		return nil, err
	}
	switch name {
	case "string":
		return s, nil
	case "integer":
		s = strings.TrimSpace(s)
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("plist: <integer>%s</integer>: %w", s, err)
		}
		return n, nil
	case "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("plist: <real>%s</real>: %w", s, err)
		}
		return f, nil
	case "date":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("plist: <date>%s</date>: %w", s, err)
		}
		return t.UTC(), nil
	case "data":
		clean := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, s)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("plist: <data>: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("plist: unknown element <%s>", name)
}

// nextStart returns the next start element, or nil at the enclosing end.
func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, fmt.Errorf("plist: text %q outside a value", bytes.TrimSpace(t))
			}
		}
	}
}

// xmlText reads an element's text up to its end; no child elements.
func xmlText(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("plist: <%s> inside a text value", t.Name.Local)
		}
	}
}

// ---- binary (bplist00) ----

type bplist struct {
	b       []byte
	offsets []uint64
	refSize int
	// visiting marks objects on the current path: a reference back to one
	// is a cycle, which a well-formed plist never has.
	visiting map[uint64]bool
}

func parseBinaryPlist(b []byte) (any, error) {
	if len(b) < 8+32 {
		return nil, errors.New("plist: binary plist too short")
	}
	tr := b[len(b)-32:]
	offSize, refSize := int(tr[6]), int(tr[7])
	numObjects := binary.BigEndian.Uint64(tr[8:])
	top := binary.BigEndian.Uint64(tr[16:])
	tableAt := binary.BigEndian.Uint64(tr[24:])
	body := uint64(len(b) - 32)
	switch {
	case offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8:
		return nil, fmt.Errorf("plist: bad trailer (offset size %d, reference size %d)", offSize, refSize)
	case numObjects == 0 || numObjects > body || top >= numObjects:
		return nil, fmt.Errorf("plist: bad trailer (%d objects, top %d)", numObjects, top)
	case tableAt < 8 || tableAt > body || (body-tableAt)/uint64(offSize) < numObjects:
		return nil, errors.New("plist: offset table outside the file")
	}
	p := &bplist{b: b[:body], refSize: refSize, visiting: map[uint64]bool{}}
	p.offsets = make([]uint64, numObjects)
	for i := range p.offsets {
		at := tableAt + uint64(i*offSize)
		p.offsets[i] = beUint(b[at : at+uint64(offSize)])
		if p.offsets[i] < 8 || p.offsets[i] >= tableAt {
			return nil, fmt.Errorf("plist: object %d at %d, outside the objects", i, p.offsets[i])
		}
	}
	return p.object(top, 0)
}

func beUint(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n
}

func (p *bplist) bytesAt(at, n uint64) ([]byte, error) {
	if at > uint64(len(p.b)) || n > uint64(len(p.b))-at {
		return nil, io.ErrUnexpectedEOF
	}
	return p.b[at : at+n], nil
}

func (p *bplist) object(ref uint64, depth int) (v any, err error) {
	if ref >= uint64(len(p.offsets)) {
		return nil, fmt.Errorf("plist: reference %d to no object", ref)
	}
	if depth > maxPlistDepth {
		return nil, errors.New("plist: nested too deeply")
	}
	if p.visiting[ref] {
		return nil, errors.New("plist: an object contains itself")
	}
	p.visiting[ref] = true
	defer delete(p.visiting, ref)
	at := p.offsets[ref]
	marker := p.b[at]
	kind, low := marker>>4, marker&0x0f
	at++
	defer func() {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("plist: object %d runs past the end", ref)
		}
	}()
	switch kind {
	case 0x0:
		switch low {
		case 0x8:
			return false, nil
		case 0x9:
			return true, nil
		}
		return nil, fmt.Errorf("plist: unsupported object 0x%02x", marker)
	case 0x1:
		if low > 3 {
			return nil, fmt.Errorf("plist: %d-byte integer", 1<<low)
		}
		n := uint64(1) << low
		b, err := p.bytesAt(at, n)
		if err != nil {
			return nil, err
		}
		// 8-byte integers are signed (two's complement); shorter ones are
		// unsigned and always fit.
		return int64(beUint(b)), nil
	case 0x2:
		switch low {
		case 2:
			b, err := p.bytesAt(at, 4)
			if err != nil {
				return nil, err
			}
			return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
		case 3:
			b, err := p.bytesAt(at, 8)
			if err != nil {
				return nil, err
			}
			return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
		}
		return nil, fmt.Errorf("plist: %d-byte real", 1<<low)
	case 0x3:
		if low != 3 {
			return nil, fmt.Errorf("plist: unsupported object 0x%02x", marker)
		}
		b, err := p.bytesAt(at, 8)
		if err != nil {
			return nil, err
		}
		secs := math.Float64frombits(binary.BigEndian.Uint64(b))
		if math.IsNaN(secs) || math.Abs(secs) > 1e11 {
			return nil, errors.New("plist: date out of range")
		}
		return plistEpoch.Add(time.Duration(secs * float64(time.Second))), nil
	}
	n, at, err := p.count(low, at)
	if err != nil {
		return nil, err
	}
	switch kind {
	case 0x4:
		b, err := p.bytesAt(at, n)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), b...), nil
	case 0x5:
		b, err := p.bytesAt(at, n)
		if err != nil {
			return nil, err
		}
		for _, c := range b {
			if c >= 0x80 {
				return nil, errors.New("plist: ASCII string with a byte above 0x7f")
			}
		}
		return string(b), nil
	case 0x6:
		if n > uint64(len(p.b)) {
			return nil, io.ErrUnexpectedEOF
		}
		b, err := p.bytesAt(at, 2*n)
		if err != nil {
			return nil, err
		}
		u := make([]uint16, n)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), nil
	case 0xA:
		refs, err := p.refs(at, n)
		if err != nil {
			return nil, err
		}
		a := make([]any, 0, len(refs))
		for _, r := range refs {
			v, err := p.object(r, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case 0xD:
		refs, err := p.refs(at, 2*n)
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, n)
		for i := uint64(0); i < n; i++ {
			k, err := p.object(refs[i], depth+1)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("plist: dict key is %T, not a string", k)
			}
			v, err := p.object(refs[n+i], depth+1)
			if err != nil {
				return nil, err
			}
			if _, dup := m[ks]; dup {
				return nil, fmt.Errorf("plist: key %q twice", ks)
			}
			m[ks] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("plist: unsupported object 0x%02x", marker)
}

// count reads a length: the marker's low nibble, or 0xF and an integer
// object after it.
func (p *bplist) count(low byte, at uint64) (uint64, uint64, error) {
	if low != 0x0f {
		return uint64(low), at, nil
	}
	m, err := p.bytesAt(at, 1)
	if err != nil {
		return 0, 0, err
	}
	if m[0]>>4 != 0x1 || m[0]&0x0f > 3 {
		return 0, 0, fmt.Errorf("plist: bad length marker 0x%02x", m[0])
	}
	size := uint64(1) << (m[0] & 0x0f)
	b, err := p.bytesAt(at+1, size)
	if err != nil {
		return 0, 0, err
	}
	n := beUint(b)
	if n > uint64(len(p.b)) {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return n, at + 1 + size, nil
}

func (p *bplist) refs(at, n uint64) ([]uint64, error) {
	if n > uint64(len(p.b)) {
		return nil, io.ErrUnexpectedEOF
	}
	b, err := p.bytesAt(at, n*uint64(p.refSize))
	if err != nil {
		return nil, err
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = beUint(b[i*p.refSize : (i+1)*p.refSize])
	}
	return out, nil
}
