package nativemsg

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary streams to the reader: it must never panic,
// never return a body over MaxMessage or an empty one, and after a
// FrameError it must still be at a frame boundary (the next Read behaves as
// on the remaining bytes).
func FuzzReader(f *testing.F) {
	f.Add(frame(`{"id":1,"type":"hello","version":1,"browser":"chrome"}`))
	f.Add(append(header(0), frame(`{"id":2}`)...))
	f.Add(append(header(MaxMessage+1), 'x'))
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		consumed := 0
		for range 1000 {
			b, err := r.Read()
			if err == io.EOF {
				if consumed != len(data) {
					t.Fatalf("EOF after %d of %d bytes", consumed, len(data))
				}
				return
			}
			var fe *FrameError
			switch {
			case errors.As(err, &fe):
				consumed += 4 + int(fe.Length)
			case errors.Is(err, ErrTruncated):
				return
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			default:
				if len(b) == 0 || len(b) > MaxMessage {
					t.Fatalf("body of %d bytes", len(b))
				}
				consumed += 4 + len(b)
			}
		}
	})
}
