package reports

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Body limits. A report is a few hundred bytes; anything past 16 KiB is
// not a report.
const (
	MaxReportBody = 16 << 10
	maxEnrolBody  = 4 << 10
	maxTokensBody = 64 << 10
)

// Routes adds POST /api/v1/enrol, /api/v1/tokens and /api/v1/reports. None of
// them reads the client's address or forwarded-for headers, and none logs a
// request.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/enrol", s.handleEnrol)
	mux.HandleFunc("POST /api/v1/tokens", s.handleTokens)
	mux.HandleFunc("POST /api/v1/reports", s.handleReport)
}

// decode reads one JSON object of at most limit bytes into v, refusing
// unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("trailing data after the JSON object")
			var mbe *http.MaxBytesError
			if errors.As(terr, &mbe) {
				err = terr
			}
		}
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return refuse(http.StatusRequestEntityTooLarge, "body over %d bytes", limit)
	}
	return refuse(http.StatusBadRequest, "body: %s", jsonReason(err))
}

// jsonReason describes a decoding error without quoting the input.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty or truncated"
	}
	return "not a JSON object of the expected shape"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// fail answers a refusal with its status and reason, and anything else
// with 500 after logging it (the error, never the request).
func (s *Service) fail(w http.ResponseWriter, err error, extra map[string]any) {
	var re *RefusedError
	if errors.As(err, &re) {
		body := map[string]any{"error": re.Reason}
		for k, v := range extra {
			body[k] = v
		}
		if re.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="detour"`)
		}
		if re.Status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			next := s.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
			w.Header().Set("Retry-After", fmt.Sprint(int(next.Sub(s.now()).Seconds())+1))
		}
		writeJSON(w, re.Status, body)
		return
	}
	s.cfg.Log.Error("reports: internal error", "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "internal error"})
}

func (s *Service) handleEnrol(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := decode(w, r, maxEnrolBody, &req); err != nil {
		s.fail(w, err, nil)
		return
	}
	if req.Code == "" || len(req.Code) > 200 {
		s.fail(w, refuse(http.StatusBadRequest, "code: missing or too long"), nil)
		return
	}
	e, err := s.Enrol(r.Context(), req.Code)
	switch {
	case errors.Is(err, errBadCode), errors.Is(err, errCodeExpired):
		s.fail(w, refuse(http.StatusUnauthorized, "%v", err), nil)
		return
	case errors.Is(err, errCodeFull):
		s.fail(w, refuse(http.StatusForbidden, "%v", err), nil)
		return
	case errors.Is(err, errCodeRate):
		next := s.now().Truncate(time.Hour).Add(time.Hour)
		w.Header().Set("Retry-After", fmt.Sprint(int(next.Sub(s.now()).Seconds())+1))
		s.fail(w, refuse(http.StatusTooManyRequests, "%v", err), nil)
		return
	}
	if err != nil {
		s.fail(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Service) handleTokens(w http.ResponseWriter, r *http.Request) {
	cred := bearer(r)
	if cred == "" {
		s.fail(w, refuse(http.StatusUnauthorized, "device credential required"), nil)
		return
	}
	var req struct {
		TokenRequests []string `json:"token_requests"`
	}
	if err := decode(w, r, maxTokensBody, &req); err != nil {
		s.fail(w, err, nil)
		return
	}
	resps, key, err := s.SignRequests(r.Context(), cred, req.TokenRequests)
	if err != nil {
		var extra map[string]any
		if key.KeyID != "" {
			extra = map[string]any{"issuer_key": key, "issuer_name": s.cfg.IssuerName}
		}
		if err == errDeviceRevoked {
			extra = map[string]any{"reason": ReasonDeviceRevoked}
		}
		s.fail(w, err, extra)
		return
	}
	if s.cfg.OnTokens != nil {
		s.cfg.OnTokens(len(resps))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_responses": resps,
		"issuer_name":     s.cfg.IssuerName,
		"issuer_key":      key,
	})
}

// reportBody is POST /api/v1/reports's body.
type reportBody struct {
	Report *Report `json:"report"`
	Token  string  `json:"token"`
}

func (s *Service) handleReport(w http.ResponseWriter, r *http.Request) {
	out, id, err := s.receiveReport(w, r)
	if s.cfg.OnReport != nil {
		switch {
		case err != nil:
			s.cfg.OnReport("refused", reasonClass(err))
		case out == Duplicate:
			s.cfg.OnReport("duplicate", "")
		default:
			s.cfg.OnReport("accepted", "")
		}
	}
	if err != nil {
		s.fail(w, err, nil)
		return
	}
	if out == Duplicate {
		writeJSON(w, http.StatusOK, map[string]any{"status": "duplicate", "id": id})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "id": id})
}

func (s *Service) receiveReport(w http.ResponseWriter, r *http.Request) (Outcome, string, error) {
	var body reportBody
	if err := decode(w, r, MaxReportBody, &body); err != nil {
		return 0, "", err
	}
	if body.Report == nil {
		return 0, "", refuse(http.StatusBadRequest, "report: missing")
	}
	if body.Token == "" {
		return 0, "", refuse(http.StatusUnauthorized, "token: missing")
	}
	tok, err := base64.StdEncoding.DecodeString(body.Token)
	if err != nil {
		return 0, "", refuse(http.StatusUnauthorized, "token: not base64")
	}
	return s.Accept(r.Context(), *body.Report, tok)
}

// reasonClass names a refusal for metrics with a word from a small fixed
// set: the field a "field: why" reason names, else the status's meaning.
// Never the reason's text, which may quote numbers and grow.
func reasonClass(err error) string {
	var re *RefusedError
	if !errors.As(err, &re) {
		return "internal"
	}
	if field, _, ok := strings.Cut(re.Reason, ":"); ok {
		switch field {
		case "org", "service", "host", "method", "vendor", "need", "hour", "client_version", "token", "report", "body":
			return field
		}
	}
	switch re.Status {
	case http.StatusRequestEntityTooLarge:
		return "too-large"
	case http.StatusConflict:
		return "conflict"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusTooManyRequests:
		return "rate"
	}
	return "other"
}
