package probe

import (
	"bytes"
	"regexp"
	"strings"
)

// blockText reports whether a page reads like a block page, whoever wrote
// it: the page's title when the title says so, else the phrase found in its
// opening text. It is a reason for "possibly blocked", never for "blocked":
// only a product's own page (a fingerprint) makes a block certain.
//
// The phrases are what block pages of many products say, in the languages
// the corpus holds (English, Welsh, French) and others filters commonly use
// (German, Spanish, Italian, Dutch, Portuguese, Turkish, Russian, Polish,
// Chinese), chosen so that ordinary pages rarely say them: a phrase must
// be about access to this page or site being blocked, denied or filtered,
// and only a small page's text is read (block pages are short; an article
// about filters is not).
func blockText(body []byte) (title, phrase string) {
	if len(body) == 0 {
		return "", ""
	}
	t := pageTitleText(body)
	if t != "" {
		if p := findBlockPhrase(strings.ToLower(t), titlePhrases); p != "" {
			return clip(t, 160), p
		}
	}
	text := visibleText(body, blockTextLimit)
	if len(text) >= blockTextLimit {
		return "", "" // a long page: content, not a block page
	}
	return "", findBlockPhrase(text, bodyPhrases)
}

// blockTextLimit is how much visible text a block page can plausibly have.
const blockTextLimit = 6000

var titlePhrases = []string{
	// English
	"access denied", "access blocked", "access restricted", "access to this site is blocked", "access has been denied",
	"blocked page", "page blocked", "site blocked", "website blocked", "web page blocked", "webpage blocked", "url blocked",
	"content blocked", "blocked site", "blocked website", "blocked notification", "block page", "blockpage", "request blocked",
	"web filter", "content filter", "url filter", "site restricted", "website restricted", "access prohibited", "forbidden site",
	"policy violation", "blocked by", "has been blocked", "is blocked",
	// Welsh
	"mynediad wedi'i wrthod", "mynediad wedi ei wrthod", "wedi'i rwystro", "wedi ei rwystro", "wedi'i flocio", "wedi ei flocio",
	"gwefan wedi'i blocio", "wedi'i blocio", "wedi ei blocio", "tudalen wedi'i rhwystro",
	// French
	"accès refusé", "acces refuse", "accès bloqué", "site bloqué", "page bloquée", "site web bloqué", "accès interdit",
	// German
	"zugriff verweigert", "zugang verweigert", "seite gesperrt", "website gesperrt", "zugriff gesperrt", "blockiert", "gesperrte seite",
	// Spanish
	"acceso denegado", "acceso bloqueado", "sitio bloqueado", "página bloqueada", "acceso restringido",
	// Italian
	"accesso negato", "sito bloccato", "pagina bloccata", "accesso bloccato",
	// Dutch
	"toegang geweigerd", "geblokkeerd", "toegang geblokkeerd",
	// Portuguese
	"acesso negado", "acesso bloqueado", "site bloqueado", "página bloqueada",
	// Turkish, Russian, Polish, Chinese (ISP and school filters' usual titles)
	"erişim engellendi", "erişim engellenmiştir", "доступ запрещён", "доступ запрещен", "доступ ограничен",
	"dostęp zablokowany", "dostęp zabroniony", "访问被拒绝", "网站已被屏蔽",
}

var bodyPhrases = []string{
	// English
	"access to this site is blocked", "access to this website is blocked", "access to this page is blocked",
	"access to this site has been blocked", "access to this web site has been blocked", "access to the web page you were trying to visit has been blocked",
	"this site has been blocked", "this website has been blocked", "this page has been blocked", "this web page has been blocked",
	"the page you requested has been blocked", "the page you have requested has been blocked", "the site you requested has been blocked",
	"the website you are trying to access has been blocked", "the web page you are trying to access has been blocked",
	"the site you are trying to access has been blocked", "the page you are trying to access has been blocked",
	"web page is blocked", "webpage is blocked", "violates network policy", "violates the network policy", "violates your organization's", "violates your organisation's",
	"site is blocked", "website is blocked", "this site is blocked", "this website is blocked", "this page is blocked",
	"you are trying to access is blocked", "you are trying to visit is blocked", "has been blocked by your", "blocked by your organisation", "blocked by your organization", "blocked by your administrator",
	"blocked by your network administrator", "blocked by the network administrator", "blocked by your it", "blocked by the web filter",
	"blocked by the content filter", "blocked by your school", "has been blocked because", "is blocked by", "was blocked by",
	"in violation of your internet usage policy", "in violation of the internet usage policy", "violates the internet usage policy",
	"access has been denied", "access denied by", "web filter", "content filter", "url filtering", "url category",
	"category is blocked", "category has been blocked", "is categorized as", "is categorised as", "blocked category",
	"not permitted by your organization", "not permitted by your organisation", "not allowed by your organization",
	"not allowed by your organisation", "acceptable use policy", "request was denied",
	// Welsh
	"mae mynediad i'r wefan hon wedi'i rwystro", "mynediad wedi'i wrthod", "wedi'i rwystro gan", "wedi ei rwystro gan",
	"wedi'i flocio gan", "wedi'i blocio gan", "mae'r wefan hon wedi'i", "polisi defnydd",
	// French
	"l'accès à ce site est bloqué", "accès refusé", "ce site est bloqué", "cette page est bloquée", "a été bloqué",
	"bloqué par",
	// German
	"der zugriff auf diese seite", "zugriff verweigert", "wurde gesperrt", "wurde blockiert", "ist gesperrt", "ist blockiert",
	// Spanish
	"acceso denegado", "ha sido bloqueado", "ha sido bloqueada", "está bloqueado", "está bloqueada",
	// Italian
	"accesso negato", "è stato bloccato", "è stata bloccata",
	// Dutch
	"toegang geweigerd", "is geblokkeerd", "werd geblokkeerd",
	// Portuguese
	"acesso negado", "foi bloqueado", "foi bloqueada", "está bloqueado",
	// Turkish, Russian, Polish, Chinese
	"erişim engellenmiştir", "bu siteye erişim", "доступ к ресурсу ограничен", "доступ к запрашиваемому ресурсу ограничен",
	"доступ к сайту ограничен", "strona została zablokowana", "dostęp do tej strony", "访问被拒绝", "已被屏蔽",
}

func findBlockPhrase(text string, phrases []string) string {
	text = strings.ReplaceAll(text, "’", "'")
	for _, p := range phrases {
		if strings.Contains(text, p) {
			return p
		}
	}
	return ""
}

var (
	titleRE  = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	scriptRE = regexp.MustCompile(`(?is)<(script|style|noscript)[^>]*>.*?</(script|style|noscript)>`)
	tagRE    = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRE  = regexp.MustCompile(`\s+`)
)

func pageTitleText(body []byte) string {
	head := body
	if len(head) > 16<<10 {
		head = head[:16<<10]
	}
	m := titleRE.FindSubmatch(head)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(spaceRE.ReplaceAllString(unescape(string(m[1])), " "))
}

// visibleText is the page's text without markup, scripts or styles,
// lower-cased, at most limit bytes (+1 so a caller can tell it was cut).
func visibleText(body []byte, limit int) string {
	b := body
	if len(b) > 64<<10 {
		b = b[:64<<10]
	}
	b = scriptRE.ReplaceAll(b, []byte(" "))
	b = tagRE.ReplaceAll(b, []byte(" "))
	b = bytes.ToLower(b)
	s := strings.TrimSpace(spaceRE.ReplaceAllString(unescape(string(b)), " "))
	if len(s) > limit {
		s = s[:limit+1]
	}
	return s
}

var entities = strings.NewReplacer("&amp;", "&", "&#39;", "'", "&#039;", "'", "&apos;", "'", "&rsquo;", "'", "&quot;", `"`,
	"&nbsp;", " ", "&#160;", " ", "&lt;", "<", "&gt;", ">", "&eacute;", "é", "&egrave;", "è", "&agrave;", "à",
	"&ecirc;", "ê", "&ccedil;", "ç", "&uuml;", "ü", "&ouml;", "ö", "&auml;", "ä", "&aacute;", "á", "&iacute;", "í",
	"&oacute;", "ó", "&ntilde;", "ñ", "&#8217;", "'", "&#x27;", "'")

func unescape(s string) string { return entities.Replace(s) }

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
