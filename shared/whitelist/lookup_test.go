package whitelist

import "testing"

// The one host → service walk: exact host, then parents with two labels or
// more, most specific first; names are normalised; a bare TLD never matches.
func TestMatchHost(t *testing.T) {
	d := &Document{Services: []Service{
		{ID: "sharepoint", Hosts: []string{"sharepoint.com"}},
		{ID: "onedrive", Hosts: []string{"my.sharepoint.com", "OneDrive.Live.com"}},
		{ID: "tld", Hosts: []string{"us"}},
	}}
	for _, tc := range []struct {
		host, service, matched string
	}{
		{"sharepoint.com", "sharepoint", "sharepoint.com"},
		{"tenant.sharepoint.com", "sharepoint", "sharepoint.com"},
		{"tenant.my.sharepoint.com", "onedrive", "my.sharepoint.com"},
		{"  TENANT.My.SharePoint.com.  ", "onedrive", "my.sharepoint.com"},
		{"onedrive.live.com:443", "onedrive", "onedrive.live.com"},
		{"live.com", "", ""},
		{"zoom.us", "", ""}, // "us" is listed, but a TLD is never a parent to match
		{"", "", ""},
		{"notsharepoint.com", "", ""},
	} {
		s, matched := d.MatchHost(tc.host)
		got := ""
		if s != nil {
			got = s.ID
		}
		if got != tc.service || matched != tc.matched {
			t.Errorf("MatchHost(%q) = %q via %q, want %q via %q", tc.host, got, matched, tc.service, tc.matched)
		}
		if s2 := d.ServiceForHost(tc.host); s2 != s {
			t.Errorf("ServiceForHost(%q) differs from MatchHost", tc.host)
		}
	}
}
