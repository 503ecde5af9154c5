package whitelist

import (
	"sync"

	"github.com/detour-project/detour/shared/catalog"
	wl "github.com/detour-project/detour/shared/whitelist"
)

// SeedIndex indexes the seed catalog built into the binary, with no
// organisations or policies: before the first sync the agent can still say
// which service a host is, never what an organisation decided.
var SeedIndex = sync.OnceValue(func() *Index {
	cats, svcs, err := catalog.Services()
	if err != nil {
		// The embedded data is tested; an error here is a build defect.
		panic(err)
	}
	return NewIndex(&wl.Document{Schema: wl.Schema, Categories: cats, Services: svcs})
})
