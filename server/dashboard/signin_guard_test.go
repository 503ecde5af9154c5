package dashboard

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store"
	"github.com/detour-project/detour/server/store/storetest"
)

// from makes b connect from a loopback address of its own: a distinct
// source, as another machine would be.
func (b *browser) from(ip string) *browser {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	b.c.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

func (b *browser) signInWith(email, pw string) resp {
	b.get("/sign-in")
	return b.post("/sign-in", url.Values{"email": {email}, "password": {pw}})
}

// Issue 17, defect 2: a client flooding an account with wrong passwords is
// backed off, and nothing it does stops a correct sign-in from another
// source or from a browser that signed in before (its device cookie), on
// either engine. Before, the shared per-account and global buckets made
// every correct sign-in fail with 429 for the whole flood.
func TestFloodDoesNotDenyCorrectSignIns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, nil)
		const victim = "sector@example.org"
		e.signIn(victim) // changes the one-time password
		known := e.browser().from("127.0.0.3")
		if r := known.signInWith(victim, e.pw[victim]); r.code != http.StatusSeeOther {
			t.Fatalf("first sign-in from the known browser: %d", r.code)
		}

		// The flood: wrong passwords for the victim and for other names,
		// from one source, as fast as it is answered.
		var wg sync.WaitGroup
		codes := map[int]int{}
		var mu sync.Mutex
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				atk := e.browser().from("127.0.0.2")
				for i := 0; i < 40; i++ {
					name := victim
					if i%4 == 3 {
						name = "someone-else@example.org"
					}
					r := atk.signInWith(name, "wrong password")
					mu.Lock()
					codes[r.code]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusUnauthorized] > 30 {
			t.Fatalf("the flood was not backed off: %v", codes)
		}

		for _, c := range []struct {
			name string
			b    *browser
		}{
			{"another source", e.browser().from("127.0.0.4")},
			{"the known browser, at the attacker's source", func() *browser { known.from("127.0.0.2"); return known }()},
		} {
			if r := c.b.signInWith(victim, e.pw[victim]); r.code != http.StatusSeeOther {
				t.Errorf("correct sign-in from %s during the flood: %d", c.name, r.code)
			}
		}
		// The attacker's own source, without a device cookie, waits.
		r := e.browser().from("127.0.0.2").signInWith(victim, e.pw[victim])
		if r.code != http.StatusTooManyRequests || r.h.Get("Retry-After") == "" {
			t.Errorf("the flooding source: %d, Retry-After %q; want 429 with Retry-After", r.code, r.h.Get("Retry-After"))
		}
		// Nothing the guard stores names an address or an account.
		rows, err := db.QueryContext(t.Context(), `SELECT key FROM signin_backoff`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			rows.Scan(&k)
			if len(k) != 32 {
				t.Errorf("a stored key is not a hash: %q", k)
			}
		}
	})
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	cases := []struct {
		failures, free int
		want           time.Duration
	}{
		{0, 5, 0}, {4, 5, 0}, {5, 5, time.Second}, {6, 5, 2 * time.Second}, {9, 5, 16 * time.Second},
		{30, 5, maxBackoff}, {1000, 5, maxBackoff},
	}
	for _, c := range cases {
		if got := backoff(c.failures, c.free); got != c.want {
			t.Errorf("backoff(%d, %d) = %v, want %v", c.failures, c.free, got, c.want)
		}
	}
}

func TestSourceBehindTrustedProxies(t *testing.T) {
	g := &signinGuard{proxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	cases := []struct {
		remote, xff, want string
	}{
		{"192.0.2.7:5000", "", "192.0.2.7"},
		{"192.0.2.7:5000", "198.51.100.1", "192.0.2.7"},                          // not a proxy: the header is ignored
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},                        // the load balancer's client
		{"10.1.2.3:5000", "203.0.113.9, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // rightmost untrusted
		{"10.1.2.3:5000", "garbage", "10.1.2.3"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:1", "", "192.0.2.7"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/sign-in", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := g.source(r); got != c.want {
			t.Errorf("%s via %q: got %s want %s", c.remote, c.xff, got, c.want)
		}
	}
}
