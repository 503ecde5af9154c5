package reports

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/detour-project/detour/shared/atomicfile"
)

// A token fetch must survive a crash between the hub signing a batch and the
// agent storing the finished tokens: the hub has counted the batch against
// the device's daily budget, and the blinding state needed to finish it
// lived only in memory, so reports waited for the next day.
//
// So the randomness of a batch (every nonce and blinding factor) comes from
// one 32-byte seed, written to disk before the request is sent. After a
// crash the agent rebuilds exactly the same blinded requests from the seed
// and sends them again; the hub recognises the batch it already counted and
// signs it again without counting it (RSA blind signatures are
// deterministic, so the answer is the same), and the agent finishes it. The
// seed is as secret as the blinding factors it makes: it stays in the
// person's state folder (0600) and is deleted once the tokens are stored.

// pendingBatch is a token request in flight.
type pendingBatch struct {
	Seed       []byte    `json:"seed"`
	N          int       `json:"n"`
	KeyID      string    `json:"key_id"`
	IssuerName string    `json:"issuer_name"`
	Created    time.Time `json:"created"`
}

// pendingTTL bounds how long a batch is retried: the hub counts by day, so a
// batch from an earlier day would be counted again anyway.
const pendingTTL = 24 * time.Hour

func newPendingBatch(n int, keyID, issuer string, now time.Time) (*pendingBatch, error) {
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return &pendingBatch{Seed: seed, N: n, KeyID: keyID, IssuerName: issuer, Created: now.UTC()}, nil
}

// random is the batch's deterministic randomness: SHA-256(seed ‖ counter),
// a hash-based stream, read in order by the request builder.
func (p *pendingBatch) random() io.Reader { return &seededStream{seed: p.Seed} }

type seededStream struct {
	seed []byte
	ctr  uint64
	buf  []byte
}

func (s *seededStream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.buf) == 0 {
			var c [8]byte
			binary.BigEndian.PutUint64(c[:], s.ctr)
			s.ctr++
			h := sha256.New()
			h.Write([]byte("detour token batch v1\x00"))
			h.Write(s.seed)
			h.Write(c[:])
			s.buf = h.Sum(nil)
		}
		k := copy(p[n:], s.buf)
		s.buf, n = s.buf[k:], n+k
	}
	return n, nil
}

func (d diskStore) pendingPath() string { return filepath.Join(d.dir, "tokens-pending.json") }

// pending returns the batch in flight, or nil. A damaged file is no batch:
// it costs one batch of budget, as before this file existed.
func (d diskStore) pending() *pendingBatch {
	var p pendingBatch
	if err := readJSON(d.pendingPath(), &p); err != nil || len(p.Seed) != 32 || p.N <= 0 {
		return nil
	}
	return &p
}

func (d diskStore) putPending(p *pendingBatch) error { return writeJSON(d.pendingPath(), p) }

func (d diskStore) dropPending() error {
	if err := os.Remove(d.pendingPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.SyncDir(d.dir)
}
