// Package protocol is the contract between the extension, the relay, the
// agent and the tray: the JSON Schemas in schema/ (the source of truth for
// every message' shape), their compiled form, and the Go types and error
// codes. contract.json is the one source of the vocabulary (codes, request
// types and their callers, events, methods, needs, the protocol version);
// contract_gen.go and the other copies are generated from it.
// This package's tests validate the shared examples against the schemas and
// decode them with these types, so the two cannot drift.
package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The vocabulary (codes, types, callers) is generated from contract.json.
//go:generate go run ./internal/gencontract

// Request is any message with an id: the envelope fields plus the raw
// message, which each handler decodes into its own params type.
type Request struct {
	ID   int64           `json:"id"`
	Type string          `json:"type"`
	Raw  json.RawMessage `json:"-"`
}

// Reply answers one request. Exactly one of Result and Error is set.
type Reply struct {
	ID     int64  `json:"id"`
	Type   string `json:"type,omitempty"`
	OK     bool   `json:"ok"`
	Result any    `json:"result,omitempty"`
	Error  *Error `json:"error,omitempty"`
}

// Event is pushed by the agent to every client; it has no id.
type Event struct {
	Type string `json:"type"`
	Data any    `json:"data,omitempty"`
}

// Error is a protocol error: a stable number and a sentence for people.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("detour error %d: %s", e.Code, e.Message) }

// Errorf builds a protocol error.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError turns any error into a protocol error, keeping a wrapped one.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// ParseRequest decodes the envelope of a request and keeps the raw bytes.
func ParseRequest(b []byte) (Request, error) {
	var r struct {
		ID   *int64 `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Request{}, Errorf(CodeMalformed, "message is not a JSON object: %v", err)
	}
	if r.ID == nil || r.Type == "" {
		return Request{}, Errorf(CodeMalformed, "message needs an integer id and a type")
	}
	return Request{ID: *r.ID, Type: r.Type, Raw: json.RawMessage(b)}, nil
}

// Decode decodes the request into a handler's params type.
func (r Request) Decode(v any) error {
	if err := json.Unmarshal(r.Raw, v); err != nil {
		return Errorf(CodeInvalidParams, "%s: %v", r.Type, err)
	}
	return nil
}

// Envelope is any frame decoded loosely, for code that routes messages
// without knowing their types (the relay, the local API client): a request
// has ID and Type, a reply has ID and OK, an event has Type and Data.
type Envelope struct {
	ID     *int64          `json:"id,omitempty"`
	Type   string          `json:"type,omitempty"`
	OK     *bool           `json:"ok,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// IsReply reports whether the envelope is a reply to a request.
func (e Envelope) IsReply() bool { return e.ID != nil && e.OK != nil }

// IsEvent reports whether the envelope is an event pushed by the agent.
func (e Envelope) IsEvent() bool { return e.ID == nil && e.OK == nil && e.Type != "" }

// DecodeData decodes an event's data into v. On the client side Data is the
// raw JSON (json.RawMessage); on the agent side it is whatever was published.
func (e Event) DecodeData(v any) error {
	raw, ok := e.Data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("event %s: encode data: %w", e.Type, err)
		}
		raw = b
	}
	if len(raw) == 0 {
		raw = json.RawMessage("null")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("event %s: decode data: %w", e.Type, err)
	}
	return nil
}

// CheckCaller says whether caller (CallerBrowser, CallerCLI, CallerTray) may
// send a request of type typ, as contract.json lists: nil when it may, a
// CodeUnknownType error for a type the protocol does not define, and a
// CodeLocalOnly error for a type meant for another caller. The relay checks
// every frame a browser sends with CallerBrowser, so that what only the
// command line or the tray may do (enrol: change the hub, the organisation
// and the pinned keys) can never come from a web extension.
func CheckCaller(caller, typ string) *Error {
	callers, ok := requestCallers[typ]
	if !ok {
		return Errorf(CodeUnknownType, "unknown message type %q", typ)
	}
	for _, c := range callers {
		if c == caller {
			return nil
		}
	}
	return Errorf(CodeLocalOnly, "%s may be sent only from this computer's command line or tray, not by a browser extension", typ)
}
