package header

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxEnvelopeDepth bounds how deeply the values of an envelope's unknown
// members may nest. The app-server's envelope nests nothing; the bound
// keeps a run of "[" from costing the JSON scanner a stack entry each.
const maxEnvelopeDepth = 32

// envelopeMembers holds the raw JSON values of an envelope's v, s and t
// members, as slices of the input; "" when the member is absent.
type envelopeMembers struct {
	v, s, t string
}

// nameSeed keys the hashes that find repeated member names; a seed per
// process keeps crafted collisions out of reach.
var nameSeed = maphash.MakeSeed()

// scanEnvelope checks that s is one JSON object whose member names (once
// unescaped) do not repeat, and returns its v, s and t members. Repeated
// names are refused because parsers resolve them differently (encoding/json
// keeps the last and folds case into struct fields; others keep the
// first or fail), so a proxy and this check could read different tokens. What it
// allocates is bounded by a small multiple of len(s), whatever s holds:
// a copy for json.Valid and one hash per member. Unknown members are
// skipped without being decoded; their values may nest at most
// maxEnvelopeDepth deep.
func scanEnvelope(s string) (envelopeMembers, error) {
	var m envelopeMembers
	if err := checkDepth(s); err != nil {
		return m, err
	}
	if b := []byte(s); !json.Valid(b) {
		// Unmarshal checks the syntax before decoding anything, so this
		// costs no more than Valid did; it names the problem.
		if err := json.Unmarshal(b, new(struct{})); err != nil {
			return m, err
		}
		return m, errors.New("not valid JSON")
	}
	i := skipSpace(s, 0)
	if s[i] != '{' {
		return m, errors.New("not an object")
	}
	// s is valid JSON from here on: one value, strings closed, brackets
	// balanced. Count the members first, so the hashes take one
	// allocation of exactly their size.
	n := 0
	walkMembers(s, i, func(string, string) { n++ })
	hashes := make([]uint64, 0, n)
	walkMembers(s, i, func(name, value string) {
		h, key := nameHash(name)
		hashes = append(hashes, h)
		switch key {
		case 'v':
			m.v = value
		case 's':
			m.s = value
		case 't':
			m.t = value
		}
	})
	slices.Sort(hashes)
	for j := 1; j < len(hashes); j++ {
		if hashes[j] == hashes[j-1] {
			return envelopeMembers{}, errors.New("a member name is repeated")
		}
	}
	return m, nil
}

// checkDepth refuses s when its brackets nest deeper than one level for
// the envelope plus maxEnvelopeDepth, outside strings.
func checkDepth(s string) error {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			i = skipString(s, i) - 1
		case '{', '[':
			if depth++; depth > 1+maxEnvelopeDepth {
				return fmt.Errorf("values nest deeper than %d levels", maxEnvelopeDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// walkMembers calls f with the raw name (quotes included) and raw value
// of each member of the object at s[i], which must be valid JSON.
func walkMembers(s string, i int, f func(name, value string)) {
	i = skipSpace(s, i+1) // past '{'
	for s[i] != '}' {
		end := skipString(s, i)
		name := s[i:end]
		i = skipSpace(s, skipSpace(s, end)+1) // past ':'
		end = skipJSONValue(s, i)
		f(name, s[i:end])
		i = skipSpace(s, end)
		if s[i] == ',' {
			i = skipSpace(s, i+1)
		}
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at s[i]
// (a '"'), or len(s) when it is not closed.
func skipString(s string, i int) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s)
}

// skipJSONValue returns the index just past the valid JSON value at s[i].
func skipJSONValue(s string, i int) int {
	switch s[i] {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for ; i < len(s); i++ {
			switch s[i] {
			case '"':
				i = skipString(s, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(s)
	}
	for i < len(s) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
		i++
	}
	return i
}

// nameHash hashes the unescaped text of the JSON string raw (quotes
// included), the way encoding/json decodes it: escapes resolved, an
// unpaired surrogate or a byte that is not UTF-8 read as U+FFFD. key is
// 'v', 's' or 't' when that is the whole name, else 0.
func nameHash(raw string) (h uint64, key byte) {
	var d maphash.Hash
	d.SetSeed(nameSeed)
	var buf [utf8.UTFMax]byte
	runes, first := 0, rune(0)
	for i := 1; i < len(raw)-1; {
		r, size := nameRune(raw, i)
		i += size
		if runes == 0 {
			first = r
		}
		runes++
		d.Write(buf[:utf8.EncodeRune(buf[:], r)])
	}
	if runes == 1 && (first == 'v' || first == 's' || first == 't') {
		key = byte(first)
	}
	return d.Sum64(), key
}

// unquote returns the text of the valid JSON string raw (quotes
// included), decoded as encoding/json decodes it. The usual "v1." value
// has no escapes and is returned as a part of raw, with nothing copied.
func unquote(raw string) string {
	body := raw[1 : len(raw)-1]
	plain := true
	for i := 0; i < len(body) && plain; i++ {
		plain = body[i] != '\\' && body[i] < utf8.RuneSelf
	}
	if plain {
		return body
	}
	var b strings.Builder
	b.Grow(len(body))
	for i := 1; i < len(raw)-1; {
		r, size := nameRune(raw, i)
		i += size
		b.WriteRune(r)
	}
	return b.String()
}

// nameRune decodes the rune at raw[i] inside a valid JSON string, and
// how many bytes it took, as encoding/json does: an unpaired surrogate or
// a byte that is not UTF-8 is U+FFFD.
func nameRune(raw string, i int) (rune, int) {
	c := raw[i]
	if c != '\\' {
		if c < utf8.RuneSelf {
			return rune(c), 1
		}
		return utf8.DecodeRuneInString(raw[i:]) // RuneError for a bad byte
	}
	switch raw[i+1] {
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r := hex4(raw[i+2 : i+6])
		if utf16.IsSurrogate(r) {
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if dec := utf16.DecodeRune(r, hex4(raw[i+8:i+12])); dec != utf8.RuneError {
					return dec, 12
				}
			}
			return utf8.RuneError, 6
		}
		return r, 6
	}
	return rune(raw[i+1]), 2 // \" \\ \/
}

// hex4 reads four hex digits, which valid JSON guarantees.
func hex4(s string) rune {
	var r rune
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
