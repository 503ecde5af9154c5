package reports

import (
	"encoding/base64"
	"net/http"
)

// VerifyOnly does what POST /api/v1/reports does before storing: the
// strict decoding, the checks against the catalog and the token's
// verification, and nothing after. BenchmarkReportAccept serves it as a
// third handler, so it can print how far storage is from the ceiling that
// reading and verifying a report sets.
func (s *Service) VerifyOnly(w http.ResponseWriter, r *http.Request) error {
	var body reportBody
	if err := decode(w, r, MaxReportBody, &body); err != nil {
		return err
	}
	tok, err := base64.StdEncoding.DecodeString(body.Token)
	if err != nil || body.Report == nil {
		return refuse(http.StatusBadRequest, "bad body")
	}
	_, err = s.admit(r.Context(), *body.Report, tok)
	return err
}
