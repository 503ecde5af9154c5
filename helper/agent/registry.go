package agent

import (
	"context"
	"sort"
	"sync"

	"github.com/detour-project/detour/shared/protocol"
)

// Handler answers one request type. It returns the reply's result, or an
// error (a *protocol.Error keeps its code; anything else is CodeInternal).
type Handler func(ctx context.Context, req protocol.Request) (any, error)

// Registry maps message types to handlers and collects the status sections
// that each subsystem contributes to `hello` and `status`. Subsystems register
// in their setup function (setup_*.go); nothing else knows their internals.
type Registry struct {
	mu       sync.RWMutex
	handlers map[string]Handler
	status   map[string]func() any
	events   func(protocol.Event)
}

// NewRegistry makes an empty registry. broadcast receives every event a
// subsystem publishes; the server sends it to every connected client.
func NewRegistry(broadcast func(protocol.Event)) *Registry {
	return &Registry{handlers: map[string]Handler{}, status: map[string]func() any{}, events: broadcast}
}

// Handle registers h for typ, replacing any earlier handler.
func (r *Registry) Handle(typ string, h Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handlers[typ] = h
}

// Status registers a section of the status reply, e.g. "whitelist".
func (r *Registry) Status(section string, f func() any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[section] = f
}

// Publish pushes an event to every client (extensions and the tray).
func (r *Registry) Publish(typ string, data any) {
	if r.events != nil {
		r.events(protocol.Event{Type: typ, Data: data})
	}
}

// Dispatch runs the handler for req.
func (r *Registry) Dispatch(ctx context.Context, req protocol.Request) (any, error) {
	r.mu.RLock()
	h, ok := r.handlers[req.Type]
	r.mu.RUnlock()
	if !ok {
		return nil, protocol.Errorf(protocol.CodeUnknownType, "unknown message type %q", req.Type)
	}
	return h(ctx, req)
}

// Types lists the registered request types: the agent's capabilities.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Snapshot gathers every status section.
func (r *Registry) Snapshot() map[string]any {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]any, len(r.status))
	for k, f := range r.status {
		out[k] = f()
	}
	return out
}

// has reports whether a handler is registered for typ.
func (r *Registry) has(typ string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.handlers[typ]
	return ok
}
