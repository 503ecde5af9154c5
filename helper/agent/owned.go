package agent

import (
	"slices"
	"sync"
	"time"
)

// owned is the set of goroutines the agent starts for its subsystems (the
// report sender, managed enrolment, the whitelist client, the config
// watcher, the tray supervisor...). Each is started with Env.Go and must
// return once the agent's context ends; Run waits for all of them before it
// returns, so that nothing of an agent outlives it (a restarted agent in the
// same process, as in tests, never races a previous one's files).
type owned struct {
	mu      sync.Mutex
	running map[string]int
	wg      sync.WaitGroup
}

// Go runs f in a goroutine owned by the agent, under a name that the log
// gives if it does not stop in time.
func (e *Env) Go(name string, f func()) {
	g := e.goroutines()
	g.mu.Lock()
	g.running[name]++
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer func() {
			g.mu.Lock()
			if g.running[name]--; g.running[name] == 0 {
				delete(g.running, name)
			}
			g.mu.Unlock()
			g.wg.Done()
		}()
		f()
	}()
}

func (e *Env) goroutines() *owned {
	if e.owned == nil {
		e.owned = &owned{running: map[string]int{}}
	}
	return e.owned
}

// wait waits for every owned goroutine, at most d, and returns the names of
// those still running then (none after a clean shutdown).
func (g *owned) wait(d time.Duration) []string {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var names []string
	for n := range g.running {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
