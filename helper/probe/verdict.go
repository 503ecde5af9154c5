package probe

// Verdict is the outcome of one diagnosis, as `detour probe --json` prints it
// and as the `diagnose` message returns it. Method is a block method or, when
// Blocked is false, the reason it is not a block (see shared/method).
type Verdict struct {
	URL        string   `json:"url"`
	Host       string   `json:"host"`
	Service    *string  `json:"service"`
	Blocked    bool     `json:"blocked"`
	Method     string   `json:"method"`
	Vendor     *string  `json:"vendor"`
	Confidence float64  `json:"confidence"`
	Evidence   []string `json:"evidence"`
	ElapsedMS  int64    `json:"elapsed_ms"`
}
