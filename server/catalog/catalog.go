// Package catalog is the hub's source of truth for the whitelist: services,
// organisations, policies and the numbered versions made from them. Other
// hub domains see it only through Service.
package catalog

import (
	"context"

	"github.com/detour-project/detour/shared/whitelist"
)

// Service is what the rest of the hub may ask of the catalog.
type Service interface {
	// Document is the latest published whitelist (never nil once set up).
	Document() *whitelist.Document
	// SetPolicy records an organisation's decision about a service and
	// publishes a new signed version; it returns that version. actor names
	// who decided, for the audit trail ("admin-cli", a user's email).
	SetPolicy(ctx context.Context, p whitelist.Policy, actor string) (int64, error)
	// OnPublish calls f with every newly published document.
	OnPublish(f func(*whitelist.Document))
}
