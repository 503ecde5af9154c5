package reports

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/detour-project/detour/server/store/storetest"
)

// FuzzReportBody: whatever arrives at POST /api/v1/reports, the answer is a
// refusal with a reason (400, 401 or 413), never a crash, a 500 or an
// acceptance without a real token.
func FuzzReportBody(f *testing.F) {
	c := &clock{t: time.Now()}
	r := zoomReport(c)
	good, _ := canonicalBody(r)
	f.Add(good)
	f.Add([]byte(`{"report":{"service":"zoom"},"token":"AAI="}`))
	f.Add([]byte(`{"report":null,"token":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"report":{"service":"zoom","host":"zoom.us","org":"org-a","method":"tcp-reset","vendor":"","need":"meeting","hour":"2026-01-01T00:00:00Z","client_version":"1.0.0"},"token":"` + string(bytes.Repeat([]byte("A"), 472)) + `"}`))
	db := storetest.SQLite(f)
	s, err := Open(f.Context(), db, Config{Document: testDoc, Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Routes(mux)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/reports", bytes.NewReader(body)))
		switch rec.Code {
		case 400, 401, 413:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}

func canonicalBody(r Report) ([]byte, error) {
	return append(append([]byte(`{"report":`), canonical(r)...), []byte(`,"token":"AAIA"}`)...), nil
}
