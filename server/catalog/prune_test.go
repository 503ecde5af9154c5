package catalog

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
	"github.com/detour-project/detour/shared/whitelist"
)

// TestImportPrune: a pruning import removes the services its file no
// longer lists, their policies and their place among other policies'
// alternatives, in one signed version; the dry run says exactly that and
// changes nothing; a bad file or an empty one changes nothing.
func TestImportPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := open(t, db, Options{Seed: fixture(), Examples: examples()})
		if _, err := c.Propose(ctx, "video-c", "north", "for meetings", "test"); err != nil {
			t.Fatal(err)
		}
		before := c.Document()
		keep := fixture()
		keep.Services = []whitelist.Service{keep.Services[0], keep.Services[1], keep.Services[2]} // video-c goes
		keep.Services = append(keep.Services, whitelist.Service{ID: "chat-d", Name: "Chat D", Vendor: "D", Category: "chat",
			Hosts: []string{"chat.d.example"}, URL: "https://chat.d.example/"})

		p, err := c.PreviewImport(ctx, keep, true)
		want := Preview{Added: []string{"chat-d"}, Changed: []string{"docs-a", "docs-b", "video-a"}, Removed: []string{"video-c"}, Policies: 1}
		if err != nil || !reflect.DeepEqual(p, want) {
			t.Fatalf("preview: %+v %v, want %+v", p, err, want)
		}
		if c.Document().Version != before.Version {
			t.Fatal("the dry run made a version")
		}
		if p, _ := c.PreviewImport(ctx, keep, false); len(p.Removed) != 0 {
			t.Fatalf("a plain import's preview removes %v", p.Removed)
		}

		for name, b := range map[string]*Bundle{
			"no services": {},
			"two services share a host": {Services: []whitelist.Service{keep.Services[0],
				{ID: "copy", Name: "Copy", Category: "documents", Hosts: []string{"docs.a.example"}, URL: "https://x.example/"}}},
		} {
			if _, _, err := c.ImportPrune(ctx, b, "test"); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
			if _, err := c.PreviewImport(ctx, b, true); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s preview: %v, want ErrInvalid", name, err)
			}
		}
		if c.Document().Version != before.Version {
			t.Fatal("a refused prune made a version")
		}

		v, got, err := c.ImportPrune(ctx, keep, "test")
		if err != nil || v != before.Version+1 || !reflect.DeepEqual(got, want) {
			t.Fatalf("prune: v%d %+v %v", v, got, err)
		}
		doc := c.Document()
		ids := map[string]bool{}
		for _, s := range doc.Services {
			ids[s.ID] = true
		}
		if ids["video-c"] || !ids["chat-d"] || len(doc.Services) != 4 {
			t.Fatalf("services after prune: %v", ids)
		}
		for _, pol := range doc.Policies {
			if pol.Service == "video-c" {
				t.Fatalf("policy of a removed service kept: %+v", pol)
			}
			for _, a := range pol.Alternatives {
				if a == "video-c" {
					t.Fatalf("removed service kept as an alternative: %+v", pol)
				}
			}
		}
		if doc.ServiceForHost("call.c.example") != nil {
			t.Fatal("a removed service's host still matches")
		}
		// Stored state agrees (a restart sees the same).
		c2 := open(t, db, Options{})
		if len(c2.Document().Services) != 4 {
			t.Fatalf("reopened: %d services", len(c2.Document().Services))
		}
		// Pruning again with the same file removes nothing more.
		if p, err := c.PreviewImport(ctx, keep, true); err != nil || len(p.Removed) != 0 {
			t.Fatalf("second preview: %+v %v", p, err)
		}
	})
}
