package reports

import (
	"errors"
	"testing"
)

func TestReasonClassIsBounded(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{refuse(400, "org: unknown organisation"), "org"},
		{refuse(401, "token: signature does not verify"), "token"},
		{refuse(409, "token: already spent on a different report"), "token"},
		{refuse(413, "body over %d bytes", 16384), "too-large"},
		{refuse(400, "body: not JSON (at byte 3)"), "body"},
		{refuse(400, "need: not one of [a b]"), "need"},
		{refuse(400, "<script>: whatever a future reason says"), "other"},
		{refuse(503, "the hub's catalog is not ready"), "unavailable"},
		{errors.New("disk full"), "internal"},
	}
	for _, c := range cases {
		if got := reasonClass(c.err); got != c.want {
			t.Errorf("%v: got %q want %q", c.err, got, c.want)
		}
	}
}
