package plan

import "strings"

// passthrough finishes the plan of a statement the parser could not read.
func (b *Builder) passthrough(p *Plan, body *scanned, parseErr error) (*Plan, error) {
	if body.statementAfterSemicolon() {
		return nil, ErrMultiStatement
	}
	words := body.firstWords(3)
	if err := refused(words); err != nil {
		return nil, err
	}
	p.Type, p.ParseError = Passthrough, parseErr
	p.Fallback, p.Statement = fallback(body, words)
	if body.err == nil {
		if a, ok := b.recoverRange(body, 0, len(body.toks), 0); ok {
			p.Fallback = demote(a.typ)
			p.Tables, p.TablesComplete = a.tables, true
		}
	}
	if !p.TablesComplete {
		p.Tables = guessTables(body, words)
	}
	p.IsDML = p.Fallback.IsDML()
	p.NeedsReservedConn = p.Fallback == Set
	switch p.Fallback {
	case Select, Insert, Update, Delete:
		p.Cacheable = cacheAllowed(p.Directives)
	}
	return p, nil
}

// refused returns ErrNotAllowed for the first keywords of a statement the tablet must not
// run (the parsed statements are refused by classify).
func refused(words []string) error {
	if len(words) == 0 {
		return nil
	}
	w1 := ""
	if len(words) > 1 {
		w1 = words[1]
	}
	switch words[0] {
	case "begin", "commit", "xa":
		return notAllowed(strings.ToUpper(words[0]), "transactions are run by the tablet's RPCs")
	case "start":
		if w1 == "transaction" {
			return notAllowed("START TRANSACTION", "use the Begin RPC")
		}
	case "rollback":
		if w1 != "to" && (w1 != "work" || len(words) < 3 || words[2] != "to") {
			return notAllowed("ROLLBACK", "use the Rollback RPC")
		}
	case "use", "lock", "handler", "prepare", "execute", "deallocate", "kill":
		return notAllowed(strings.ToUpper(words[0]), "it would leave state on a pooled connection")
	case "create", "alter", "drop":
		if w1 == "database" || w1 == "schema" {
			return notAllowed("database DDL", "vtgate runs it, not the tablet")
		}
	}
	return nil
}

// fallback returns the plan type and statement name a Passthrough most likely has.
func fallback(body *scanned, words []string) (Type, string) {
	if len(words) == 0 {
		return OtherAdmin, "UNKNOWN"
	}
	name := strings.ToUpper(words[0])
	switch words[0] {
	case "select", "table", "values":
		return Select, "SELECT"
	case "with":
		return withFallback(body)
	case "insert":
		return Insert, name
	case "replace":
		return Insert, name
	case "update":
		return Update, name
	case "delete":
		return Delete, name
	case "create", "alter", "drop", "rename", "truncate":
		return DDL, "DDL"
	case "set":
		return Set, name
	case "show":
		return OtherRead, name
	case "describe", "desc", "explain":
		return Select, "EXPLAIN"
	case "flush":
		return Flush, name
	case "load":
		return Load, "OTHER"
	case "call":
		return CallProcedure, "CALL_PROC"
	case "savepoint":
		return Savepoint, name
	case "release":
		return Release, name
	case "rollback":
		return RollbackSavepoint, "SAVEPOINT_ROLLBACK"
	case "unlock":
		return UnlockTables, "UNLOCK_TABLES"
	}
	return OtherAdmin, name
}

// withFallback classifies WITH ... by its first top-level INSERT, REPLACE, UPDATE or DELETE.
func withFallback(body *scanned) (Type, string) {
	for _, t := range body.toks {
		if t.depth != 0 || t.kind != tokWord {
			continue
		}
		switch strings.ToLower(body.str(t)) {
		case "insert", "replace":
			return Insert, strings.ToUpper(body.str(t))
		case "update":
			return Update, "UPDATE"
		case "delete":
			return Delete, "DELETE"
		}
	}
	return Select, "SELECT"
}

// demote drops the row-limit variants: a Passthrough is never rewritten.
func demote(t Type) Type {
	switch t {
	case UpdateLimit:
		return Update
	case DeleteLimit:
		return Delete
	}
	return t
}

// maxRecoverDepth bounds nested reductions (SET STATEMENT ... FOR ANALYZE ...).
const maxRecoverDepth = 4

// recoverRange reads the tokens [from, to) of body as one statement, reducing MariaDB forms
// the TiDB parser does not know to statements it does, so that their tables are known:
//   - INSERT/REPLACE/DELETE ... RETURNING exprs: the statement before RETURNING, plus
//     "SELECT exprs" for the tables of subqueries in the returned expressions;
//   - SET STATEMENT var=value, ... FOR stmt: stmt, plus "SET var=value, ...";
//   - ANALYZE [FORMAT=name] stmt (MariaDB runs stmt): stmt;
//   - CREATE OR REPLACE TABLE ...: CREATE TABLE ...;
//   - ALTER [options] VIEW ... (MySQL, not in the TiDB grammar): CREATE OR REPLACE [options]
//     VIEW ...;
//   - INSERT ... VALUES/SET ... AS alias [(columns)] ON DUPLICATE KEY UPDATE (MySQL 8 row
//     alias): the statement without "AS alias [(columns)]" (alias.col stays a column).
func (b *Builder) recoverRange(body *scanned, from, to, depth int) (analysis, bool) {
	if depth > 0 {
		if a, ok := b.analyzeRange(body, from, to); ok {
			return a, true
		}
	}
	if depth >= maxRecoverDepth {
		return analysis{}, false
	}
	words := codeWords(body, from, to, 4)
	if len(words) < 2 {
		return analysis{}, false
	}
	w := func(i int) string { return strings.ToLower(body.str(body.toks[words[i]])) }
	switch {
	case w(0) == "insert" || w(0) == "replace" || w(0) == "delete":
		if r := topWord(body, from, to, "returning"); r >= 0 {
			return b.joinRanges(body, from, r, r+1, to, "SELECT ", depth)
		}
		if as, end := rowAlias(body, from, to); as >= 0 {
			return b.analyzeText(parseText(body, body.toks[from].start, body.toks[as].start) +
				parseText(body, rangeEnd(body, end), rangeEnd(body, to)))
		}
	case w(0) == "alter" && (w(1) == "view" || w(1) == "algorithm" || w(1) == "definer" || w(1) == "sql"):
		return b.analyzeText("CREATE OR REPLACE " + parseText(body, body.toks[words[0]].end, rangeEnd(body, to)))
	case w(0) == "set" && w(1) == "statement":
		if f := topWord(body, words[1]+1, to, "for"); f >= 0 {
			return b.joinRanges(body, f+1, to, words[1]+1, f, "SET ", depth)
		}
	case w(0) == "analyze":
		start := words[1]
		if w(1) == "format" {
			start = topValueEnd(body, words[1]+1, to)
		}
		if start < to {
			return b.recoverRange(body, start, to, depth+1)
		}
	case len(words) == 4 && w(0) == "create" && w(1) == "or" && w(2) == "replace" && w(3) == "table":
		text := parseText(body, body.toks[from].start, body.toks[words[1]].start) +
			parseText(body, body.toks[words[2]].end, rangeEnd(body, to))
		return b.analyzeText(text)
	}
	return analysis{}, false
}

// joinRanges reads [from1, to1) as the statement and prefix + [from2, to2) as a second one
// whose tables are added (read by the first).
func (b *Builder) joinRanges(body *scanned, from1, to1, from2, to2 int, prefix string, depth int) (analysis, bool) {
	a, ok := b.recoverRange(body, from1, to1, depth+1)
	if !ok || from2 >= to2 {
		return analysis{}, false
	}
	extra, ok := b.analyzeText(prefix + parseText(body, body.toks[from2].start, rangeEnd(body, to2)))
	if !ok {
		return analysis{}, false
	}
	for _, t := range extra.tables {
		a.tables = appendTable(a.tables, t)
	}
	return a, true
}

// analyzeRange parses and analyses the tokens [from, to) of body.
func (b *Builder) analyzeRange(body *scanned, from, to int) (analysis, bool) {
	if from >= to {
		return analysis{}, false
	}
	return b.analyzeText(parseText(body, body.toks[from].start, rangeEnd(body, to)))
}

// analyzeText parses and analyses a text prepared by parseText holding one statement.
func (b *Builder) analyzeText(text string) (analysis, bool) {
	stmts, err := b.parse(text)
	if err != nil || len(stmts) != 1 {
		return analysis{}, false
	}
	a, err := analyze(stmts[0])
	return a, err == nil
}

// rangeEnd returns the byte offset where the token range ending before index to ends.
func rangeEnd(body *scanned, to int) int {
	if to >= len(body.toks) {
		return len(body.text)
	}
	return body.toks[to].start
}

// codeWords returns the indexes of the first n tokens of [from, to) that are SQL, stopping
// at the first one that is not a word.
func codeWords(body *scanned, from, to, n int) []int {
	var idx []int
	for i := from; i < to && len(idx) < n; i++ {
		t := body.toks[i]
		if !t.isCode() {
			continue
		}
		if t.kind != tokWord {
			break
		}
		idx = append(idx, i)
	}
	return idx
}

// topWord returns the index of the first word w at parenthesis depth 0 outside executable
// comments in [from, to), or -1.
func topWord(body *scanned, from, to int, w string) int {
	for i := from; i < to; i++ {
		t := body.toks[i]
		if t.depth == 0 && !t.inExec && body.word(t, w) {
			return i
		}
	}
	return -1
}

// topValueEnd skips `[=] value` after FORMAT and returns the index of the next code token.
func topValueEnd(body *scanned, i, to int) int {
	i = body.codeIndex(i)
	if i < to && body.str(body.toks[i]) == "=" {
		i = body.codeIndex(i + 1)
	}
	if i < to {
		i = body.codeIndex(i + 1)
	}
	return i
}

// rowAlias finds the MySQL 8 row alias of an INSERT ... VALUES/SET: the index of its AS and
// of the first token after "AS alias [(columns)]"; -1 when there is none (an INSERT ...
// SELECT has none, and its AS are column or table aliases).
func rowAlias(body *scanned, from, to int) (int, int) {
	valuesSeen := false
	for i := from; i < to; i++ {
		t := body.toks[i]
		if t.depth != 0 || t.inExec || t.kind != tokWord {
			continue
		}
		switch {
		case body.word(t, "select"):
			return -1, -1
		case body.word(t, "values") || body.word(t, "value") || body.word(t, "set"):
			valuesSeen = true
		case valuesSeen && body.word(t, "as"):
			alias := body.codeIndex(i + 1)
			if alias >= to || body.toks[alias].kind != tokWord && body.toks[alias].kind != tokIdent {
				return -1, -1
			}
			end := body.codeIndex(alias + 1)
			if end < to && body.str(body.toks[end]) == "(" {
				for end++; end < to && body.toks[end].depth > 0; end++ {
				}
			}
			return i, end
		}
	}
	return -1, -1
}

// guessTables lists, best effort, the tables a statement the parser could not read names
// right after its first keywords: the table(s) of CREATE/ALTER/DROP/TRUNCATE/RENAME TABLE,
// VIEW or SEQUENCE (ADMIN), the table of CREATE INDEX ... ON (ADMIN), the target of
// INSERT/REPLACE [INTO] and UPDATE (WRITER). The list is never complete.
func guessTables(body *scanned, words []string) []TableRef {
	if len(words) == 0 {
		return nil
	}
	role, i := Admin, -1
	switch words[0] {
	case "create", "alter", "drop", "rename":
		for j, t := range body.toks {
			if t.depth == 0 && t.kind == tokWord && (body.word(t, "table") || body.word(t, "view") || body.word(t, "sequence")) {
				i = j + 1
				break
			}
			if t.depth == 0 && body.word(t, "on") && len(words) > 1 && (words[1] == "index" || words[1] == "unique") {
				i = j + 1
				break
			}
		}
	case "truncate", "insert", "replace", "update":
		if words[0] != "truncate" {
			role = Writer
		}
		i = body.codeIndex(0) + 1
		for i < len(body.toks) && body.toks[i].kind == tokWord && isModifier(body.str(body.toks[i])) {
			i = body.codeIndex(i + 1)
		}
	}
	if i < 0 {
		return nil
	}
	return nameList(body, i, role)
}

// isModifier reports the words that may stand between a statement's keyword and its table.
func isModifier(w string) bool {
	switch strings.ToLower(w) {
	case "table", "into", "low_priority", "delayed", "high_priority", "ignore", "if", "not", "exists":
		return true
	}
	return false
}

// nameList reads `name [{, | TO} name ...]` from token i, after an optional IF [NOT] EXISTS.
func nameList(body *scanned, i int, role Role) []TableRef {
	var refs []TableRef
	for i = body.codeIndex(i); i < len(body.toks) && isModifier(body.str(body.toks[i])) && body.toks[i].kind == tokWord; {
		i = body.codeIndex(i + 1)
	}
	for i < len(body.toks) {
		j := i + 1 // name, or db . name
		if j+1 < len(body.toks) && body.str(body.toks[j]) == "." {
			j += 2
		}
		ref, ok := tableName(body, body.toks[i:min(j, len(body.toks))])
		if !ok {
			break
		}
		ref.Role = role
		refs = appendTable(refs, ref)
		if i = body.codeIndex(j); i >= len(body.toks) || !(body.str(body.toks[i]) == "," || body.word(body.toks[i], "to")) {
			break
		}
		i = body.codeIndex(i + 1)
	}
	return refs
}
