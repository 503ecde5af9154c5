package probe

import (
	"strings"
	"testing"
)

// TestBlockText: block pages' wording is recognised in the languages the
// corpus holds and others; ordinary pages, and long pages that only mention
// a block, are not.
func TestBlockText(t *testing.T) {
	long := "<html><head><title>News</title></head><body>" + strings.Repeat("<p>An article about how schools filter the web. </p>", 200) + "<p>This site has been blocked in some countries.</p></body></html>"
	cases := []struct {
		name string
		body string
		want bool
	}{
		{"English title", "<html><head><title>Website Blocked</title></head><body>x</body></html>", true},
		{"English text", "<html><body><p>The page you requested has been blocked.</p></body></html>", true},
		{"Welsh", "<html><head><title>Mynediad wedi'i wrthod</title></head><body></body></html>", true},
		{"Welsh, curly apostrophe", "<html><body><p>Mae mynediad i’r wefan hon wedi’i rwystro.</p></body></html>", true},
		{"French", "<html><head><title>Acc&egrave;s refus&eacute;</title></head></html>", true},
		{"Russian ISP", "<html><head><title>Доступ ограничен</title></head><body>Доступ к ресурсу ограничен на основании закона</body></html>", true},
		{"Turkish ISP", "<html><body>Bu siteye erişim engellenmiştir.</body></html>", true},
		{"an ordinary page", "<html><head><title>Board</title></head><body><p>Welcome back</p></body></html>", false},
		{"a long article that mentions a block", long, false},
		{"words inside a script", "<html><head><title>App</title><script>var msg='this site has been blocked'</script></head><body>ok</body></html>", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			title, phrase := blockText([]byte(c.body))
			if got := phrase != ""; got != c.want {
				t.Errorf("blockText = %q, %q; want a block reading: %v", title, phrase, c.want)
			}
		})
	}
}
