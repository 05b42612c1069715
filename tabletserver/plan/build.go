package plan

import (
	"strconv"
	"strings"
)

// Build builds the plan of one SQL text as sent by vtgate (bind variables :name and ::name).
//
// The text is split into margin comments and statement as Vitess splits it; the scanner
// finds bind variables, quotes and comments; Vitess's "select next N values from seq" is
// recognised by the scanner (Nextval); everything else is parsed by the TiDB parser with the
// bind variables replaced by parameter markers.
//
// Build returns an error only for a text that must not run at all:
//   - ErrEmpty: no statement;
//   - ErrTooDeep: parentheses nested deeper than MaxNesting;
//   - ErrMultiStatement: more than one statement ("select 1; drop table t"), whether or not
//     the parser can read them — a ';' followed by more SQL is enough when it cannot;
//   - ErrNotAllowed (wrapped): BEGIN, START TRANSACTION, COMMIT, ROLLBACK (not to a
//     savepoint), XA, USE, LOCK TABLES, HANDLER, PREPARE, EXECUTE, DEALLOCATE, KILL,
//     CREATE/ALTER/DROP DATABASE — statements vttablet refuses in Execute too.
//
// A text the parser cannot read (MariaDB-only syntax, syntax TiDB lacks, a syntax error, an
// unterminated quote) gives a Passthrough plan: ParseError says why, Query still has its bind
// variables, and Fallback is decided by the first keyword: SELECT, TABLE, VALUES, '(' →
// Select; WITH → the first top-level INSERT/REPLACE/UPDATE/DELETE after it, else Select;
// INSERT, REPLACE → Insert; UPDATE → Update; DELETE → Delete; CREATE, ALTER, DROP, RENAME,
// TRUNCATE → DDL; SET → Set; SHOW → OtherRead; DESCRIBE, DESC, EXPLAIN → Select; FLUSH →
// Flush; LOAD → Load; CALL → CallProcedure; SAVEPOINT → Savepoint; RELEASE → Release;
// ROLLBACK ... TO → RollbackSavepoint; UNLOCK → UnlockTables; anything else → OtherAdmin.
// Its TablesComplete is false and Tables holds at most a best-effort guess (the table named
// right after CREATE/ALTER/DROP/TRUNCATE/RENAME TABLE, INSERT INTO, UPDATE; see
// guessTables), except for the forms the builder can reduce to statements the parser reads
// (see recoverRange): INSERT/REPLACE/DELETE ... RETURNING, SET STATEMENT ... FOR stmt,
// ANALYZE [FORMAT=...] stmt, CREATE OR REPLACE TABLE, ALTER VIEW, INSERT ... AS row_alias;
// those list all their tables with TablesComplete true and take Fallback from the reduced
// statement.
func (b *Builder) Build(sql string) (*Plan, error) {
	full := scan(sql)
	m := splitMargins(full)
	body := scan(m.body)
	if lastCode(body) < 0 {
		return nil, ErrEmpty
	}
	if body.maxDepth > MaxNesting {
		return nil, ErrTooDeep
	}
	p := &Plan{Leading: m.leading, Trailing: m.trailing, Directives: directives(full, nil)}
	p.Query = query(m, body, -1)
	if full.err != nil { // an unterminated quote or comment, maybe in a margin comment
		return b.passthrough(p, body, full.err)
	}
	if nextval(p, body) {
		return p, nil
	}
	stmts, err := b.parse(parseText(body, 0, len(body.text)))
	switch {
	case err != nil:
		return b.passthrough(p, body, err)
	case len(stmts) > 1:
		return nil, ErrMultiStatement
	case len(stmts) == 0:
		return nil, ErrEmpty
	}
	a, err := analyze(stmts[0])
	if err != nil {
		return nil, err
	}
	fill(p, a, m, body)
	return p, nil
}

// fill sets the fields of a plan built from a syntax tree.
func fill(p *Plan, a analysis, m margins, body *scanned) {
	p.Type, p.Fallback, p.Statement = a.typ, a.typ, a.statement
	p.Tables, p.TablesComplete, p.Target = a.tables, true, a.target
	p.HasLimit, p.WithoutWhere, p.NeedsReservedConn = a.hasLimit, a.withoutWhere, a.reserved
	p.IsDML = a.typ.IsDML()
	switch a.statement {
	case "SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE":
		p.Cacheable = cacheAllowed(p.Directives)
	}
	switch a.typ {
	case Select, SelectImpossible, SelectLockFunc:
		if a.statement == "SELECT" && !a.hasLimit {
			if at, ok := limitPoint(body, a.union); ok {
				p.LimitQuery = query(m, body, at)
			}
		}
	case UpdateLimit, DeleteLimit:
		p.LimitQuery = query(m, body, statementEnd(body))
	}
	if a.typ.IsDML() && a.typ != Insert {
		p.Where = where(body)
	}
}

// query assembles leading comments, the statement (with " limit :#maxLimit" inserted at byte
// offset limitAt when it is not negative) and trailing comments.
func query(m margins, body *scanned, limitAt int) *ParsedQuery {
	var qb queryBuilder
	qb.sb.Grow(len(m.leading) + len(body.text) + len(m.trailing) + 20)
	qb.plain(m.leading)
	if limitAt < 0 {
		qb.scanned(body, 0, len(body.text))
	} else {
		qb.scanned(body, 0, limitAt)
		if limitAt == 0 || limitAt == len(body.text) || body.text[limitAt-1] != ' ' {
			qb.plain(" ")
		}
		qb.plain("limit ")
		qb.bind("#maxLimit")
		if limitAt < len(body.text) && !isSpace(rune(body.text[limitAt])) {
			qb.plain(" ")
		}
		qb.scanned(body, limitAt, len(body.text))
	}
	if m.trailing != "" {
		qb.plain(" ")
		qb.plain(m.trailing)
	}
	return qb.done()
}

// lastCode returns the index of the last token that is SQL (not a comment, not a ';'), or -1.
func lastCode(sc *scanned) int {
	for i := len(sc.toks) - 1; i >= 0; i-- {
		t := sc.toks[i]
		if t.kind != tokComment && !(t.kind == tokPunct && sc.text[t.start] == ';') {
			return i
		}
	}
	return -1
}

// statementEnd returns the byte offset just after the statement's last SQL token.
func statementEnd(sc *scanned) int {
	if i := lastCode(sc); i >= 0 {
		return sc.toks[i].end
	}
	return len(sc.text)
}

// limitPoint returns where a SELECT's LIMIT goes: before a top-level locking clause (FOR
// UPDATE, FOR SHARE, LOCK IN SHARE MODE) or an INTO after the FROM clause, else at the end.
// It gives up (false) when that clause is inside an executable comment, or follows a UNION
// (there it belongs to the last SELECT, and a LIMIT before it would too).
func limitPoint(sc *scanned, union bool) (int, bool) {
	seenFrom := false
	for i, t := range sc.toks {
		if t.depth != 0 || t.kind != tokWord {
			continue
		}
		next := sc.codeIndex(i + 1)
		hasNext := next < len(sc.toks)
		clause := sc.word(t, "into") && seenFrom ||
			hasNext && sc.word(t, "for") && (sc.word(sc.toks[next], "update") || sc.word(sc.toks[next], "share")) ||
			hasNext && sc.word(t, "lock") && sc.word(sc.toks[next], "in")
		if clause {
			if t.inExec || union {
				return 0, false
			}
			return t.start, true
		}
		seenFrom = seenFrom || sc.word(t, "from")
	}
	return statementEnd(sc), true
}

// where cuts out the top-level WHERE clause of an UPDATE or DELETE, up to ORDER BY, LIMIT or
// the end; nil when there is none or it touches an executable comment.
func where(sc *scanned) *ParsedQuery {
	start := -1
	end := statementEnd(sc)
	for _, t := range sc.toks {
		if start >= 0 && (t.kind == tokExecOpen || t.kind == tokExecClose || t.inExec) {
			return nil
		}
		if t.depth != 0 || t.kind != tokWord {
			continue
		}
		if start < 0 && sc.word(t, "where") {
			if t.inExec {
				return nil
			}
			start = t.start
		} else if start >= 0 && (sc.word(t, "order") || sc.word(t, "limit")) {
			end = t.start
			break
		}
	}
	if start < 0 {
		return nil
	}
	end = start + len(strings.TrimRightFunc(sc.text[start:end], isSpace))
	var qb queryBuilder
	qb.scanned(sc, start, end)
	return qb.done()
}

// nextval recognises Vitess's sequence statement, which MySQL and the TiDB parser do not
// know: SELECT [SQL_CACHE | SQL_NO_CACHE] NEXT {VALUE | n VALUES | :n VALUES} {FROM | FOR}
// [db.]seq. The sequence needs WRITER.
func nextval(p *Plan, sc *scanned) bool {
	var toks []token
	for _, t := range sc.toks {
		switch {
		case t.kind == tokComment:
		case t.kind == tokExecOpen || t.kind == tokExecClose:
			return false
		default:
			toks = append(toks, t)
		}
	}
	for len(toks) > 0 && sc.str(toks[len(toks)-1]) == ";" {
		toks = toks[:len(toks)-1]
	}
	i := 1
	if len(toks) < 5 || !sc.word(toks[0], "select") {
		return false
	}
	if sc.word(toks[i], "sql_cache") || sc.word(toks[i], "sql_no_cache") {
		i++
	}
	if i+3 > len(toks) || !sc.word(toks[i], "next") {
		return false
	}
	i++
	var count int64
	var countVar string
	switch c := toks[i]; {
	case sc.word(c, "value"):
		count, i = 1, i+1
	case c.kind == tokBind && !c.list && i+1 < len(toks) && sc.word(toks[i+1], "values"):
		countVar, i = sc.bindName(c), i+2
	case c.kind == tokWord && i+1 < len(toks) && sc.word(toks[i+1], "values"):
		n, err := strconv.ParseInt(sc.str(c), 10, 64)
		if err != nil {
			return false
		}
		count, i = n, i+2
	default:
		return false
	}
	if i >= len(toks) || !(sc.word(toks[i], "from") || sc.word(toks[i], "for")) {
		return false
	}
	ref, ok := tableName(sc, toks[i+1:])
	if !ok {
		return false
	}
	ref.Role = Writer
	p.Type, p.Fallback, p.Statement = Nextval, Nextval, "SELECT"
	p.Tables, p.TablesComplete, p.Target = []TableRef{ref}, true, &ref
	p.NextCount, p.NextCountBindVar = count, countVar
	p.Cacheable = cacheAllowed(p.Directives)
	return true
}

// cacheAllowed reports the absence of a SKIP_QUERY_PLAN_CACHE directive.
func cacheAllowed(directives map[string]string) bool {
	skip, _ := strconv.ParseBool(directives["SKIP_QUERY_PLAN_CACHE"])
	return !skip
}

// tableName reads exactly `name` or `db.name` (plain or backquoted) from toks.
func tableName(sc *scanned, toks []token) (TableRef, bool) {
	ident := func(t token) (string, bool) {
		switch t.kind {
		case tokWord:
			return sc.str(t), true
		case tokIdent:
			s := sc.str(t)
			if len(s) < 2 {
				return "", false
			}
			return strings.ReplaceAll(s[1:len(s)-1], "``", "`"), true
		}
		return "", false
	}
	switch {
	case len(toks) == 1:
		name, ok := ident(toks[0])
		return TableRef{Name: name}, ok
	case len(toks) == 3 && toks[1].kind == tokPunct && sc.str(toks[1]) == ".":
		q, ok1 := ident(toks[0])
		name, ok2 := ident(toks[2])
		return TableRef{Qualifier: q, Name: name}, ok1 && ok2
	}
	return TableRef{}, false
}
