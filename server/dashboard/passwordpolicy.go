package dashboard

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Password rules follow NIST SP 800-63B (5.1.1.2) and OWASP's authentication
// guidance: length over composition (no "one digit, one symbol" rules), any
// character allowed including spaces, a long maximum so passphrases fit, and
// a refusal of what attackers try first — common passwords and their
// decorated forms ("Password1234!"), repeated or sequential characters,
// words from the context (the product, the person's own address), and
// nothing but spaces. Each refusal names its reason so a person can fix it.

// MinPassword is the shortest password a person may choose.
const MinPassword = 12

// MaxPassword is the longest accepted: long enough for any passphrase,
// short enough that hashing it is not a way to burn the hub's CPU.
const MaxPassword = 256

// commonStems are the words most often found at the core of breached
// passwords, once case, digits, symbols and look-alike letters are taken
// away. It is short on purpose: the length rule already excludes most of a
// breach corpus, and what survives it is mostly these words decorated.
var commonStems = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`password passwort motdepasse cyfrinair passw pass qwerty qwertyuiop azerty asdf asdfgh
		asdfghjkl zxcvbn zxcvbnm letmein welcome welcomeback admin administrator root login iloveyou loveyou monkey dragon
		football baseball soccer rugby cricket sunshine princess trustno master shadow superman batman starwars pokemon
		changeme secret default guest hello whatever freedom abc abcd abcdef abcdefgh abcdefghijkl test testing
		summer winter spring autumn january february march april may june july august september october november december
		monday tuesday wednesday thursday friday saturday sunday london cardiff wales cymru england scotland
		council office company access passcode security computer internet detour dashboard hub`) {
		commonStems[w] = true
	}
}

// leet maps the look-alike characters people substitute for letters.
var leet = strings.NewReplacer("0", "o", "1", "i", "!", "i", "3", "e", "4", "a", "@", "a", "5", "s", "$", "s", "7", "t", "+", "t", "8", "b", "9", "g")

// passwordProblem returns the i18n key of the first rule pw breaks, or ""
// when it is acceptable. context holds words a guesser would try for this
// account (its email address, the organisation).
func passwordProblem(pw string, context ...string) string {
	if !utf8.ValidString(pw) {
		return "password.invalid"
	}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return "password.invalid"
		}
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case strings.TrimSpace(pw) == "":
		return "password.only_spaces"
	case n < MinPassword:
		return "password.too_short"
	case n > MaxPassword:
		return "password.too_long"
	case predictable(pw):
		return "password.repetitive"
	}
	if stem := passwordStem(pw); stem == "" || isCommon(stem) {
		return "password.common"
	}
	// Without the words of its context, what is left must still be worth
	// something: at least ten characters that are not a run or a common word.
	low, rest := strings.ToLower(pw), strings.ToLower(pw)
	for _, c := range context {
		for _, w := range contextWords(c) {
			rest = strings.ReplaceAll(rest, w, "")
		}
	}
	if rest != low && (utf8.RuneCountInString(rest) < 10 || predictable(rest) || isCommon(passwordStem(rest))) {
		return "password.context"
	}
	return ""
}

// predictable reports whether s is mostly repetition or runs: fewer than
// four steps from one character to the next that are not "the same again",
// "the next or previous in order" (abc, 321) or "the neighbour on the
// keyboard" (qwe). Twelve identical letters, "abcabcabcabc", "123456789012"
// and "qwertyuiop[]" are all predictable; "correct horse" is not.
func predictable(s string) bool {
	rs := []rune(strings.ToLower(s))
	surprises := 0
	distinct := map[rune]bool{}
	for i, r := range rs {
		distinct[r] = true
		if i == 0 {
			continue
		}
		p := rs[i-1]
		if r == p || r == p+1 || r == p-1 || keyboardNeighbours(p, r) {
			continue
		}
		surprises++
	}
	// A short cycle ("abab", "1212") is predictable however it steps.
	return surprises < 4 || len(distinct) < 4
}

var keyboardRows = []string{"`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./"}

func keyboardNeighbours(a, b rune) bool {
	for _, row := range keyboardRows {
		i, j := strings.IndexRune(row, a), strings.IndexRune(row, b)
		if i >= 0 && j >= 0 && (i-j == 1 || j-i == 1) {
			return true
		}
	}
	return false
}

// passwordStem undoes the usual decorations: case, look-alike digits and
// symbols, and the digits and punctuation added before or after a word.
func passwordStem(pw string) string {
	s := strings.ToLower(strings.TrimSpace(pw))
	s = strings.TrimFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
	s = leet.Replace(s)
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) {
			return r
		}
		return -1
	}, s)
}

// isCommon reports whether stem is a common word, or only common words
// strung together or repeated ("passwordpassword", "welcomeadmin").
func isCommon(stem string) bool {
	if commonStems[stem] {
		return true
	}
	// Split greedily into common words; all of it must be covered.
	ok := make([]bool, len(stem)+1)
	ok[0] = true
	for i := 1; i <= len(stem); i++ {
		for j := 0; j < i && !ok[i]; j++ {
			ok[i] = ok[j] && commonStems[stem[j:i]]
		}
	}
	return ok[len(stem)]
}

// contextWords are the parts of an email address or name worth guessing:
// "jo.bloggs@example-borough.gov.uk" gives jo, bloggs, example, borough….
func contextWords(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if utf8.RuneCountInString(w) >= 4 {
			out = append(out, w)
		}
	}
	return out
}
