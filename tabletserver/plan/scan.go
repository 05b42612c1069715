package plan

import "strings"

// The scanner splits a SQL text into tokens with MySQL's lexical rules for what matters here:
// quotes, comments, executable comments and bind variables. It is not a parser; the TiDB
// parser reads the statement. Assumed SQL mode: backslash escapes in strings (no
// NO_BACKSLASH_ESCAPES) and "..." as a string (no ANSI_QUOTES), as Vitess assumes.

type tokKind uint8

const (
	tokWord      tokKind = iota + 1 // identifier, keyword or number: a run of [A-Za-z0-9_$] and bytes >= 0x80
	tokIdent                        // `quoted identifier`
	tokString                       // '...' or "..."
	tokBind                         // :name or ::name
	tokPunct                        // any other character, or ":="
	tokComment                      // /* */ (also /*+ hints and /*T! ... */), -- and # comments
	tokExecOpen                     // "/*!" or "/*M!" and an optional version: what follows is SQL
	tokExecClose                    // the "*/" that closes an executable comment
)

// token is one lexical token of a text.
type token struct {
	start, end int     // byte offsets
	depth      int     // parenthesis depth at the token
	kind       tokKind //
	inExec     bool    // inside an executable comment
	list       bool    // tokBind: ::name
}

// isCode reports whether the token is part of the statement proper (not a comment and not the
// closing mark of an executable comment).
func (t token) isCode() bool { return t.kind != tokComment && t.kind != tokExecClose }

// scanned is a scanned text.
type scanned struct {
	text     string
	toks     []token
	err      error // an unterminated string, identifier or comment
	maxDepth int   // deepest parenthesis nesting
}

func (s *scanned) str(t token) string { return s.text[t.start:t.end] }

// word reports whether t is the unquoted word w (ASCII case-insensitive).
func (s *scanned) word(t token, w string) bool {
	return t.kind == tokWord && strings.EqualFold(s.text[t.start:t.end], w)
}

// bindName returns the name of a tokBind token.
func (s *scanned) bindName(t token) string {
	if t.list {
		return s.text[t.start+2 : t.end]
	}
	return s.text[t.start+1 : t.end]
}

// scan tokenizes text. It never fails: an unterminated quote or comment runs to the end of
// the text and is reported in err.
func scan(text string) *scanned {
	sc := &scanned{text: text, toks: make([]token, 0, len(text)/4+4)}
	depth, inExec := 0, false
	for i := 0; i < len(text); {
		c := text[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
			i++
			continue
		}
		t := token{start: i, depth: depth, inExec: inExec}
		switch {
		case c == '\'' || c == '"':
			t.kind, t.end = tokString, sc.quoted(i, c, true)
		case c == '`':
			t.kind, t.end = tokIdent, sc.quoted(i, c, false)
		case c == '#' || c == '-' && strings.HasPrefix(text[i:], "--") && (i+2 == len(text) || text[i+2] <= ' '):
			t.kind, t.end = tokComment, lineEnd(text, i)
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			t.kind, t.end = sc.blockComment(i, inExec)
			if t.kind == tokExecOpen {
				inExec = true
			}
		case c == '*' && inExec && i+1 < len(text) && text[i+1] == '/':
			t.kind, t.end, inExec = tokExecClose, i+2, false
		case c == ':':
			t.kind, t.end, t.list = colon(text, i)
		case isWordChar(c):
			t.kind, t.end = tokWord, wordEnd(text, i)
		default:
			t.kind, t.end = tokPunct, i+1
			switch c {
			case '(':
				depth++
				sc.maxDepth = max(sc.maxDepth, depth)
			case ')':
				if depth > 0 {
					depth--
				}
			}
		}
		sc.toks = append(sc.toks, t)
		i = t.end
	}
	if inExec && sc.err == nil {
		sc.err = errUnterminated("executable comment")
	}
	return sc
}

// quoted returns the end of the quoted token starting at i. A doubled quote is an escaped
// quote; a backslash escapes the next byte when backslash is true.
func (s *scanned) quoted(i int, q byte, backslash bool) int {
	text := s.text
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if backslash {
				j++
			}
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	if s.err == nil {
		if q == '`' {
			s.err = errUnterminated("quoted identifier")
		} else {
			s.err = errUnterminated("string")
		}
	}
	return len(text)
}

// blockComment scans the /* at i: an executable comment opener (/*! or /*M! with its version
// digits) outside an executable comment, else a comment to the next */.
func (s *scanned) blockComment(i int, inExec bool) (tokKind, int) {
	text := s.text
	if !inExec {
		j := -1
		switch {
		case strings.HasPrefix(text[i:], "/*!"):
			j = i + 3
		case strings.HasPrefix(text[i:], "/*M!"):
			j = i + 4
		}
		if j >= 0 {
			for j < len(text) && text[j] >= '0' && text[j] <= '9' {
				j++
			}
			return tokExecOpen, j
		}
	}
	end := strings.Index(text[i+2:], "*/")
	if end < 0 {
		if s.err == nil {
			s.err = errUnterminated("comment")
		}
		return tokComment, len(text)
	}
	return tokComment, i + 2 + end + 2
}

// colon scans the ':' at i: ":=" (punctuation), :name, ::name, or a lone ':'.
func colon(text string, i int) (tokKind, int, bool) {
	if i+1 < len(text) && text[i+1] == '=' {
		return tokPunct, i + 2, false
	}
	list := i+1 < len(text) && text[i+1] == ':'
	j := i + 1
	if list {
		j++
	}
	if j < len(text) && text[j] == '#' {
		j++ // :#name, tablet-internal (Vitess's :#maxLimit)
	}
	if j >= len(text) || !isBindChar(text[j]) {
		return tokPunct, i + 1, false
	}
	j++
	for j < len(text) {
		switch {
		case isBindChar(text[j]):
			j++
		case text[j] == '.' && j+1 < len(text) && isBindChar(text[j+1]):
			j += 2
		default:
			return tokBind, j, list
		}
	}
	return tokBind, j, list
}

func lineEnd(text string, i int) int {
	if n := strings.IndexByte(text[i:], '\n'); n >= 0 {
		return i + n + 1
	}
	return len(text)
}

func wordEnd(text string, i int) int {
	for i < len(text) && isWordChar(text[i]) {
		i++
	}
	return i
}

func isBindChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '$'
}

func isWordChar(c byte) bool { return isBindChar(c) || c >= 0x80 }

// margins is a SQL text split as Vitess's sqlparser.SplitMarginComments splits it: the
// /* */ comments before and after the statement, and the statement between them with
// surrounding white space and semicolons trimmed.
type margins struct {
	leading, body, trailing string
}

// splitMargins splits sql using its tokens: a token-exact version of Vitess's text search
// (Leading keeps the white space after the comments, Trailing starts at the first /*).
func splitMargins(sc *scanned) margins {
	text, toks := sc.text, sc.toks
	isMargin := func(t token) bool { return t.kind == tokComment && strings.HasPrefix(text[t.start:], "/*") }
	trail := len(toks)
	for trail > 0 && isMargin(toks[trail-1]) {
		trail--
	}
	trailStart := len(text)
	if trail < len(toks) {
		trailStart = toks[trail].start
	}
	lead := 0
	for lead < trail && isMargin(toks[lead]) {
		lead++
	}
	leadEnd := 0
	if lead > 0 {
		leadEnd = trailStart
		if lead < trail {
			leadEnd = toks[lead].start
		}
	}
	body := strings.TrimFunc(text[leadEnd:trailStart], func(r rune) bool { return isSpace(r) || r == ';' })
	return margins{
		leading:  strings.TrimLeftFunc(text[:leadEnd], isSpace),
		body:     body,
		trailing: strings.TrimRightFunc(text[trailStart:], isSpace),
	}
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' || r == 0x85 || r == 0xA0
}

// firstWords returns the lower-cased first n code words of the text (fewer if it has fewer).
func (s *scanned) firstWords(n int) []string {
	words := make([]string, 0, n)
	for _, t := range s.toks {
		if len(words) == n {
			break
		}
		if t.kind == tokWord {
			words = append(words, strings.ToLower(s.str(t)))
		} else if t.isCode() && t.kind != tokExecOpen && !(t.kind == tokPunct && s.text[t.start] == '(') {
			break
		}
	}
	return words
}

// codeIndex returns the index of the first code token at or after i, or len(toks).
func (s *scanned) codeIndex(i int) int {
	for i < len(s.toks) && !s.toks[i].isCode() {
		i++
	}
	return i
}

// statementAfterSemicolon reports whether a ';' is followed by more SQL: a multi-statement
// text.
func (s *scanned) statementAfterSemicolon() bool {
	for i, t := range s.toks {
		if t.kind == tokPunct && s.text[t.start] == ';' {
			for _, u := range s.toks[i+1:] {
				if u.isCode() && u.kind != tokExecOpen && !(u.kind == tokPunct && s.text[u.start] == ';') {
					return true
				}
			}
			return false
		}
	}
	return false
}
