package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notify announces payload on channel when the transaction commits (and
// never if it rolls back), so that every process sharing the database hears
// of a change at once instead of at its next poll. On SQLite, where the
// processes are on one machine and poll a local file cheaply, it does
// nothing.
func (t *Tx) Notify(ctx context.Context, channel, payload string) error {
	if t.db.dialect != Postgres {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("store: notify %s: %w", channel, err)
	}
	return nil
}

// Listening says whether a listener's connection is up, so the caller can
// poll often only while it is not.
type Listening func() bool

// Listen calls on for each notification on channels until ctx ends, on a
// connection of its own (LISTEN belongs to a session, so it cannot share
// the pool). When that connection drops it reconnects with a growing pause
// and, once listening again, calls on once per channel with an empty
// payload: whatever was announced in between was missed, so the caller
// should look. on runs on the listener's goroutine and must not block.
//
// On SQLite it returns nil: there is nothing to listen to, and the caller
// polls.
func (d *DB) Listen(ctx context.Context, channels []string, on func(channel, payload string)) Listening {
	if d.dialect != Postgres {
		return nil
	}
	var up atomic.Bool
	go func() {
		pause := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := d.listenOnce(ctx, channels, on, &up)
			up.Store(false)
			if ctx.Err() != nil {
				return
			}
			d.count(err)
			if d.OnError != nil {
				d.OnError(fmt.Errorf("store: listen: %w", err))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			if pause *= 2; pause > 5*time.Second {
				pause = 5 * time.Second
			}
		}
	}()
	return up.Load
}

func (d *DB) listenOnce(ctx context.Context, channels []string, on func(channel, payload string), up *atomic.Bool) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, d.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	up.Store(true)
	for _, ch := range channels {
		on(ch, "")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		on(n.Channel, n.Payload)
	}
}
