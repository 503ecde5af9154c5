package nativemsg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/detour-project/detour/shared/protocol"
)

func frame(body string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func header(n uint32) []byte { return binary.NativeEndian.AppendUint32(nil, n) }

// step is one expected result of Reader.Read: a body, a frame error code, or
// a terminal error.
type step struct {
	body  string
	code  int   // FrameError code
	isErr error // errors.Is target for a terminal error
}

func TestReader(t *testing.T) {
	big := strings.Repeat("x", MaxMessage)
	for _, tc := range []struct {
		name  string
		input []byte
		wrap  func(io.Reader) io.Reader
		want  []step
	}{
		{"one frame", frame(`{"id":1}`), nil, []step{{body: `{"id":1}`}, {isErr: io.EOF}}},
		{"empty stream", nil, nil, []step{{isErr: io.EOF}}},
		{"several frames in one read", bytes.Join([][]byte{frame(`{"a":1}`), frame(`{"b":2}`), frame(`{"c":3}`)}, nil), nil,
			[]step{{body: `{"a":1}`}, {body: `{"b":2}`}, {body: `{"c":3}`}, {isErr: io.EOF}}},
		{"partial reads: one byte at a time", append(frame(`{"id":1,"type":"hello"}`), frame(`{"id":2}`)...), iotest.OneByteReader,
			[]step{{body: `{"id":1,"type":"hello"}`}, {body: `{"id":2}`}, {isErr: io.EOF}}},
		{"partial reads: half reader", frame(`{"id":1,"type":"hello"}`), iotest.HalfReader,
			[]step{{body: `{"id":1,"type":"hello"}`}, {isErr: io.EOF}}},
		{"zero length then a frame", append(header(0), frame(`{"id":2}`)...), nil,
			[]step{{code: protocol.CodeZeroLength}, {body: `{"id":2}`}, {isErr: io.EOF}}},
		{"exactly the limit", frame(big), nil, []step{{body: big}, {isErr: io.EOF}}},
		{"oversize skipped then a frame", append(frame(big+"y"), frame(`{"id":3}`)...), iotest.HalfReader,
			[]step{{code: protocol.CodeTooLarge}, {body: `{"id":3}`}, {isErr: io.EOF}}},
		{"oversize truncated", append(header(2*MaxMessage), "abc"...), nil, []step{{isErr: ErrTruncated}}},
		{"truncated header", []byte{5, 0}, nil, []step{{isErr: ErrTruncated}}},
		{"truncated body", append(header(10), `{"id"`...), nil, []step{{isErr: ErrTruncated}}},
		{"header only", header(10), nil, []step{{isErr: ErrTruncated}}},
		{"truncated after a good frame", append(frame(`{"id":1}`), 9), nil, []step{{body: `{"id":1}`}, {isErr: ErrTruncated}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tc.input)
			if tc.wrap != nil {
				src = tc.wrap(src)
			}
			r := NewReader(src)
			for i, want := range tc.want {
				got, err := r.Read()
				switch {
				case want.isErr != nil:
					if !errors.Is(err, want.isErr) {
						t.Fatalf("step %d: err = %v, want %v", i, err, want.isErr)
					}
				case want.code != 0:
					var fe *FrameError
					if !errors.As(err, &fe) || fe.Code != want.code || fe.ProtocolError().Code != want.code {
						t.Fatalf("step %d: err = %v, want frame error %d", i, err, want.code)
					}
				default:
					if err != nil || string(got) != want.body {
						t.Fatalf("step %d: got %.40q, %v; want %.40q", i, got, err, want.body)
					}
				}
			}
		})
	}
}

// countingReader counts the largest single Read buffer it was given: the
// reader must drain an oversized body in small pieces, never in one buffer of
// the announced size.
type countingReader struct {
	r       io.Reader
	maxRead int
}

func (c *countingReader) Read(p []byte) (int, error) {
	if len(p) > c.maxRead {
		c.maxRead = len(p)
	}
	return c.r.Read(p)
}

func TestOversizeIsNotBuffered(t *testing.T) {
	const size = 8 << 20
	src := io.MultiReader(bytes.NewReader(header(size)), io.LimitReader(zeroReader{}, size), bytes.NewReader(frame(`{"id":1}`)))
	cr := &countingReader{r: src}
	r := NewReader(cr)
	_, err := r.Read()
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Length != size {
		t.Fatalf("err = %v", err)
	}
	if cr.maxRead > 64<<10 {
		t.Fatalf("oversized body read into a %d-byte buffer", cr.maxRead)
	}
	if b, err := r.Read(); err != nil || string(b) != `{"id":1}` {
		t.Fatalf("next frame: %q, %v", b, err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    []byte
		wantErr error
	}{
		{"small", []byte(`{"id":1}`), nil},
		{"at the limit", bytes.Repeat([]byte("a"), MaxMessage), nil},
		{"over the limit", bytes.Repeat([]byte("a"), MaxMessage+1), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := NewWriter(&buf).Write(tc.body)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if buf.Len() != 0 {
					t.Fatalf("refused frame wrote %d bytes", buf.Len())
				}
				return
			}
			got, err := NewReader(&buf).Read()
			if err != nil || !bytes.Equal(got, tc.body) {
				t.Fatalf("round trip: %d bytes, %v", len(got), err)
			}
		})
	}
	if err := NewWriter(io.Discard).Write(nil); err == nil {
		t.Fatal("empty frame written")
	}
}

// TestWriterSerialises writes from many goroutines through a writer that
// splits every write in two: frames must still arrive whole.
func TestWriterSerialises(t *testing.T) {
	pr, pw := io.Pipe()
	w := NewWriter(splitWriter{pw})
	var wg sync.WaitGroup
	const n = 200
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.WriteJSON(map[string]any{"id": i, "pad": strings.Repeat("p", i*37)})
		}()
	}
	go func() { wg.Wait(); pw.Close() }()
	r := NewReader(pr)
	seen := 0
	for {
		b, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil || b[0] != '{' || b[len(b)-1] != '}' {
			t.Fatalf("frame %d: %.40q, %v", seen, b, err)
		}
		seen++
	}
	if seen != n {
		t.Fatalf("read %d frames, want %d", seen, n)
	}
}

type splitWriter struct{ w io.Writer }

func (s splitWriter) Write(p []byte) (int, error) {
	h := len(p) / 2
	n, err := s.w.Write(p[:h])
	if err != nil {
		return n, err
	}
	m, err := s.w.Write(p[h:])
	return n + m, err
}

func TestWriterReportsClosedPeer(t *testing.T) {
	pr, pw := io.Pipe()
	pr.Close()
	if err := NewWriter(pw).Write([]byte(`{"id":1}`)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("err = %v, want closed pipe", err)
	}
}

// BenchmarkEncodeDecode1KiB writes and reads back 1 KiB messages through an
// in-memory buffer and reports messages per second, beside the same bytes
// copied through the buffer without framing (the baseline, measured in the
// same process) so the framing's cost shows as a ratio.
func BenchmarkEncodeDecode1KiB(b *testing.B) {
	body := []byte(`{"id":1,"type":"suggest","host":"` + strings.Repeat("a", 1024-40) + `"}`)
	copyOnce.Do(func() {
		var buf bytes.Buffer
		out := make([]byte, 4+len(body))
		in := append(header(uint32(len(body))), body...)
		copyNs = nsPerOp(func() {
			buf.Write(in)
			io.ReadFull(&buf, out)
		})
	})
	var buf bytes.Buffer
	w, r := NewWriter(&buf), NewReader(&buf)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if _, err := r.Read(); err != nil {
			b.Fatal(err)
		}
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(1e9/perOp, "msgs/s")
	b.ReportMetric(1e9/copyNs, "copy-msgs/s")
	b.ReportMetric(perOp/copyNs, "x-copy")
}

var (
	copyOnce sync.Once
	copyNs   float64
)

// nsPerOp times f over about 200 ms: a baseline measured once per process,
// beside the benchmark it is compared with.
func nsPerOp(f func()) float64 {
	n, start := 0, time.Now()
	for time.Since(start) < 200*time.Millisecond {
		for range 1000 {
			f()
		}
		n += 1000
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}
