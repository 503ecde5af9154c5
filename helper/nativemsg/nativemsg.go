// Package nativemsg reads and writes native-messaging frames: a 32-bit
// unsigned length in native byte order, then that many bytes of UTF-8 JSON.
// Browsers use it on the relay's stdin/stdout and the agent uses the same
// framing on its local socket (see shared/protocol/PROTOCOL.md).
//
// A frame that is empty or larger than MaxMessage is refused before any body
// buffer is allocated, and an oversized body is drained without being kept,
// so a hostile or buggy peer cannot make us allocate what it announces and the
// stream stays usable for the next frame.
package nativemsg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/detour-project/detour/shared/protocol"
)

// MaxMessage is the largest frame body accepted or written: Chrome closes the
// port when a host sends more than 1 MiB, and we hold the browser to the same.
const MaxMessage = 1 << 20

// FrameError is a frame that was skipped whole: the stream is still at a frame
// boundary and the caller may answer with the error's Code and read on.
type FrameError struct {
	Code   int    // protocol.CodeZeroLength or protocol.CodeTooLarge
	Length uint32 // the announced length
}

func (e *FrameError) Error() string {
	if e.Code == protocol.CodeZeroLength {
		return "nativemsg: frame of length 0"
	}
	return fmt.Sprintf("nativemsg: frame of %d bytes is over the %d-byte limit; skipped", e.Length, MaxMessage)
}

// ProtocolError is the reply a caller sends for the skipped frame (id 0).
func (e *FrameError) ProtocolError() *protocol.Error {
	if e.Code == protocol.CodeZeroLength {
		return protocol.Errorf(protocol.CodeZeroLength, "a message of length 0 was skipped")
	}
	return protocol.Errorf(protocol.CodeTooLarge, "a message of %d bytes is over the limit of %d bytes and was skipped", e.Length, MaxMessage)
}

// ErrTruncated is wrapped by the error for a stream that ended inside a frame.
// Unlike a FrameError, the stream cannot be read any further.
var ErrTruncated = errors.New("nativemsg: stream ended inside a frame")

// ErrTooLarge is returned by the writer for a body over MaxMessage.
var ErrTooLarge = errors.New("nativemsg: message over 1 MiB")

// Reader reads frames from one stream. It is not safe for concurrent use: a
// stream has one reader goroutine.
type Reader struct {
	r   io.Reader
	hdr [4]byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read returns the next frame's body. It returns io.EOF when the stream ends
// cleanly between frames, a *FrameError (the stream is still usable) for an
// empty or oversized frame, and an error wrapping ErrTruncated when the stream
// ends inside a frame.
func (r *Reader) Read() ([]byte, error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: %d of 4 header bytes", ErrTruncated, n)
	case err != nil:
		return nil, fmt.Errorf("nativemsg: read header: %w", err)
	}
	size := binary.NativeEndian.Uint32(r.hdr[:])
	if size == 0 {
		return nil, &FrameError{Code: protocol.CodeZeroLength}
	}
	if size > MaxMessage {
		got, err := io.CopyN(io.Discard, r.r, int64(size))
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("%w: oversized frame of %d bytes had only %d", ErrTruncated, size, got)
			}
			return nil, fmt.Errorf("nativemsg: skip oversized frame: %w", err)
		}
		return nil, &FrameError{Code: protocol.CodeTooLarge, Length: size}
	}
	body := make([]byte, size)
	got, err := io.ReadFull(r.r, body)
	if err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: frame of %d bytes had only %d", ErrTruncated, size, got)
		}
		return nil, fmt.Errorf("nativemsg: read body: %w", err)
	}
	return body, nil
}

// Writer writes whole frames; it is safe for concurrent use, and a frame is
// never interleaved with another.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends body as one frame. A body over MaxMessage or an empty one is
// refused without writing anything. When the peer has gone the write's error
// (EPIPE, for a pipe whose SIGPIPE is ignored) is returned.
func (w *Writer) Write(body []byte) error {
	if len(body) > MaxMessage {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(body))
	}
	if len(body) == 0 {
		return errors.New("nativemsg: refusing to write an empty frame")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// One write per frame: header and body together, so a frame is never
	// split between two writers and a pipe sees one syscall for small frames.
	need := 4 + len(body)
	if cap(w.buf) < need {
		w.buf = make([]byte, need)
	}
	buf := w.buf[:need]
	binary.NativeEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.w.Write(buf)
	if cap(w.buf) > 64<<10 {
		w.buf = nil // do not pin a large buffer after one big message
	}
	if err != nil {
		return fmt.Errorf("nativemsg: write: %w", err)
	}
	return nil
}

// WriteJSON encodes v and sends it as one frame.
func (w *Writer) WriteJSON(v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err
	}
	return w.Write(b)
}

// Marshal encodes v as one frame body (JSON, no trailing newline).
func Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("nativemsg: encode: %w", err)
	}
	return b, nil
}
