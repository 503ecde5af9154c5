package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// A notification sent in a committed transaction is heard; one in a rolled
// back transaction is not; after the listening connection is killed the
// listener comes back and says so with a catch-up call.
func TestListenNotifyAndReconnect(t *testing.T) {
	db := storetest.Postgres(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 16)
	up := db.Listen(ctx, []string{"detour_test_ch"}, func(ch, payload string) { got <- ch + "=" + payload })
	wait := func(want string) {
		t.Helper()
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("heard %q, want %q", g, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing heard, want %q", want)
		}
	}
	wait("detour_test_ch=") // first catch-up
	if !up() {
		t.Fatal("listener not up after its catch-up call")
	}
	notify := func(payload string, commit bool) {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.Notify(ctx, "detour_test_ch", payload); err != nil {
				return err
			}
			if !commit {
				return context.Canceled
			}
			return nil
		})
		if commit && err != nil {
			t.Fatal(err)
		}
	}
	notify("rolled-back", false)
	notify("7", true)
	wait("detour_test_ch=7")

	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	wait("detour_test_ch=") // reconnected: look again
	notify("8", true)
	wait("detour_test_ch=8")

	if l := storetest.SQLite(t).Listen(ctx, []string{"x"}, func(string, string) {}); l != nil {
		t.Fatal("SQLite has nothing to listen to")
	}
}
