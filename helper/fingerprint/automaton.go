package fingerprint

// automaton finds every occurrence of a fixed set of patterns in one pass over
// a text, folding ASCII letters to lower case as it reads, so a 256 KiB page
// is neither copied nor lowered before matching. It is an Aho-Corasick
// automaton compiled to a full DFA over byte classes: bytes that appear in no
// pattern share one class, which keeps the transition table small (states ×
// classes) while every input byte costs a single table lookup.
type automaton struct {
	class    [256]uint8
	nclass   int
	next     []int32   // state*nclass + class -> state
	next16   []uint16  // the same table when states fit in 16 bits: half the cache footprint
	out      [][]int32 // pattern ids ending at each state (including via fail links)
	term     []bool    // out[state] is not empty: one byte to test per input byte
	npattern int
}

// lowerTable folds ASCII upper case to lower case and leaves every other byte,
// so that patterns and text are folded identically (UTF-8 bytes unchanged).
var lowerTable = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if i >= 'A' && i <= 'Z' {
			t[i] = byte(i) + 'a' - 'A'
		}
	}
	return t
}()

func foldString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerTable[c]
	}
	return string(b)
}

func newAutomaton(patterns []string) *automaton {
	a := &automaton{npattern: len(patterns)}
	// Byte classes: class 0 is "in no pattern".
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			c := lowerTable[p[i]]
			if a.class[c] == 0 {
				a.nclass++
				a.class[c] = uint8(a.nclass)
			}
		}
	}
	a.nclass++
	for c := 'A'; c <= 'Z'; c++ {
		a.class[c] = a.class[c+'a'-'A']
	}
	nc := a.nclass
	// Trie.
	a.next = make([]int32, nc) // state 0 = root, -1 = no edge yet
	for i := range a.next {
		a.next[i] = -1
	}
	a.out = [][]int32{nil}
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			k := int(s)*nc + int(a.class[p[i]])
			if a.next[k] < 0 {
				a.next[k] = int32(len(a.out))
				a.out = append(a.out, nil)
				for j := 0; j < nc; j++ {
					a.next = append(a.next, -1)
				}
			}
			s = a.next[k]
		}
		a.out[s] = append(a.out[s], int32(id))
	}
	// Breadth-first: failure links become full transitions.
	fail := make([]int32, len(a.out))
	queue := make([]int32, 0, len(a.out))
	for c := 0; c < nc; c++ {
		if t := a.next[c]; t < 0 {
			a.next[c] = 0
		} else {
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		a.out[s] = append(a.out[s], a.out[fail[s]]...)
		for c := 0; c < nc; c++ {
			k := int(s)*nc + c
			if t := a.next[k]; t < 0 {
				a.next[k] = a.next[int(fail[s])*nc+c]
			} else {
				fail[t] = a.next[int(fail[s])*nc+c]
				queue = append(queue, t)
			}
		}
	}
	if len(a.out) <= 1<<16 {
		a.next16 = make([]uint16, len(a.next))
		for i, t := range a.next {
			a.next16[i] = uint16(t)
		}
	}
	a.term = make([]bool, len(a.out))
	for i, o := range a.out {
		a.term[i] = len(o) > 0
	}
	return a
}

// scan sets bit i of found for each pattern i that occurs in text.
func (a *automaton) scan(text []byte, found []uint64) {
	if a.next16 != nil {
		a.scan16(text, found)
		return
	}
	nc := int32(a.nclass)
	next, term, class := a.next, a.term, &a.class
	s := int32(0)
	for _, c := range text {
		s = next[s*nc+int32(class[c])]
		if term[s] {
			for _, id := range a.out[s] {
				found[id>>6] |= 1 << (uint(id) & 63)
			}
		}
	}
}

func (a *automaton) scan16(text []byte, found []uint64) {
	nc := uint32(a.nclass)
	next, term, class := a.next16, a.term, &a.class
	s := uint32(0)
	for _, c := range text {
		s = uint32(next[s*nc+uint32(class[c])])
		if term[s] {
			for _, id := range a.out[s] {
				found[id>>6] |= 1 << (uint(id) & 63)
			}
		}
	}
}

func has(found []uint64, id int) bool { return found[id>>6]&(1<<(uint(id)&63)) != 0 }
