package engine

import (
	"strconv"
	"strings"

	"github.com/tabletd/tabletd/proto/querypb"
)

// sqlEscape is the character written after a backslash for each byte that needs escaping in
// a single-quoted literal (Vitess's SQLEncodeMap); 0: written as it is.
var sqlEscape = [256]byte{0: '0', '\'': '\'', '\b': 'b', '\n': 'n', '\r': 'r', '\t': 't', 26: 'Z', '\\': '\\'}

// appendQuoted appends val as a single-quoted literal with MySQL backslash escapes.
func appendQuoted(buf, val []byte) []byte {
	buf = append(buf, '\'')
	start := 0
	for i, c := range val {
		if e := sqlEscape[c]; e != 0 {
			buf = append(buf, val[start:i]...)
			buf = append(buf, '\\', e)
			start = i + 1
		}
	}
	buf = append(buf, val[start:]...)
	return append(buf, '\'')
}

// QuoteString returns s as a SQL string literal (VDiff writes its SQL with it too).
func QuoteString(s string) string { return string(appendQuoted(nil, []byte(s))) }

// QuoteID returns a backquoted identifier.
func QuoteID(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Type property bits of querypb.Type values (query.proto's Flag enum).
const (
	flagIsQuoted = int32(querypb.Flag_ISQUOTED)
	flagIsBinary = int32(querypb.Flag_ISBINARY)
)

// appendValue appends one row value of type typ as a SQL literal, as vttablet's player
// encodes bind variables: binary types as _binary'…', other quoted types (text, temporal,
// ENUM and SET as strings) as '…', JSON converted to utf8mb4 (the connection is binary and
// MySQL refuses a binary string as JSON), BIT as b'…', numbers as they are.
// enumAsIndex: ENUM and SET values are their numeric index (an old source).
func appendValue(buf []byte, typ querypb.Type, val []byte, null, enumAsIndex bool) []byte {
	if null {
		return append(buf, "null"...)
	}
	t := int32(typ)
	switch {
	case typ == querypb.Type_JSON:
		buf = append(buf, "convert("...)
		buf = appendQuoted(buf, val)
		return append(buf, " using utf8mb4)"...)
	case (typ == querypb.Type_ENUM || typ == querypb.Type_SET) && enumAsIndex:
		return append(buf, val...)
	case typ == querypb.Type_BIT:
		buf = append(buf, "b'"...)
		for _, c := range val {
			for bit := 7; bit >= 0; bit-- {
				buf = append(buf, '0'+(c>>bit)&1)
			}
		}
		return append(buf, '\'')
	case t&flagIsBinary == flagIsBinary:
		return appendQuoted(append(buf, "_binary"...), val)
	case t&flagIsQuoted == flagIsQuoted:
		return appendQuoted(buf, val)
	case len(val) == 0:
		// A number with no digits cannot come from MySQL; never emit an empty literal.
		return append(buf, "''"...)
	}
	return append(buf, val...)
}

// rowValues splits a Row into its values; a nil entry with null[i] set is NULL.
func rowValues(r *querypb.Row, n int) (vals [][]byte, null []bool) {
	vals, null = make([][]byte, n), make([]bool, n)
	off := int64(0)
	for i := 0; i < n && i < len(r.GetLengths()); i++ {
		l := r.Lengths[i]
		if l < 0 {
			null[i] = true
			continue
		}
		vals[i] = r.Values[off : off+l]
		off += l
	}
	return vals, null
}

// sqlScan walks a statement's text token by token, skipping string literals, quoted
// identifiers and comments: just enough to find top-level keywords and qualifiers in
// VReplicationExec statements without re-printing them (a re-printed statement could lose
// the escaping of a prototext value).
type sqlToken struct {
	start, end int
	word       string // lower-cased bare word or unquoted identifier; "" for other tokens
	depth      int    // parenthesis depth at the token
	quotedID   bool
}

func scanSQL(s string) []sqlToken {
	var toks []sqlToken
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			i = skipString(s, i)
		case c == '`':
			j := i + 1
			for j < len(s) {
				if s[j] == '`' {
					if j+1 < len(s) && s[j+1] == '`' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, sqlToken{start: i, end: min(j+1, len(s)),
				word: strings.ReplaceAll(s[i+1:min(j, len(s))], "``", "`"), depth: depth, quotedID: true})
			i = j + 1
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(s)
			}
		case c == '#' || (c == '-' && i+2 < len(s) && s[i+1] == '-' && (s[i+2] == ' ' || s[i+2] == '\t')):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case isWordChar(c):
			j := i
			for j < len(s) && isWordChar(s[j]) {
				j++
			}
			toks = append(toks, sqlToken{start: i, end: j, word: strings.ToLower(s[i:j]), depth: depth})
			i = j
		default:
			toks = append(toks, sqlToken{start: i, end: i + 1, depth: depth})
			i++
		}
	}
	return toks
}

func isWordChar(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// skipString returns the index after the literal starting at s[i], honouring backslash
// escapes and doubled quotes.
func skipString(s string, i int) int {
	q := s[i]
	j := i + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			j += 2
			continue
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j += 2
				continue
			}
			return j + 1
		}
		j++
	}
	return len(s)
}

// topLevelWhere returns the text after the statement's top-level WHERE keyword, "" when there
// is none.
func topLevelWhere(s string) string {
	for _, t := range scanSQL(s) {
		if !t.quotedID && t.depth == 0 && t.word == "where" {
			return strings.TrimSpace(s[t.end:])
		}
	}
	return ""
}

// replaceQualifier rewrites every qualifier from (bare or backquoted, followed by '.') to
// to, leaving everything else of the text as it is.
func replaceQualifier(s, from, to string) string {
	if from == to {
		return s
	}
	toks := scanSQL(s)
	var b strings.Builder
	last := 0
	for i, t := range toks {
		name := t.word
		if !t.quotedID {
			name = s[t.start:t.end]
		}
		if name != from || i+1 >= len(toks) || s[toks[i+1].start] != '.' || toks[i+1].end-toks[i+1].start != 1 {
			continue
		}
		b.WriteString(s[last:t.start])
		b.WriteString(QuoteID(to))
		last = t.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// itoa is strconv.Itoa for int32 ids.
func itoa(id int32) string { return strconv.Itoa(int(id)) }
