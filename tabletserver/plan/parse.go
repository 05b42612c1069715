package plan

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the TiDB parser
)

// Builder builds plans. It keeps a pool of TiDB parsers (a parser is not safe for concurrent
// use); a Builder is safe for concurrent use and should live as long as the query engine.
type Builder struct {
	parsers sync.Pool
}

// NewBuilder returns a Builder.
func NewBuilder() *Builder { return &Builder{} }

// Build builds the plan of sql with a one-off parser. Long-lived callers use a Builder,
// which reuses parsers.
func Build(sql string) (*Plan, error) { return NewBuilder().Build(sql) }

// parse parses a text prepared by parseText. A parser panic is returned as an error.
func (b *Builder) parse(text string) (stmts []ast.StmtNode, err error) {
	p, _ := b.parsers.Get().(*parser.Parser)
	if p == nil {
		p = parser.New()
	}
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("parser failure: %v", r)
			return // a parser that panicked is not reused
		}
		b.parsers.Put(p)
	}()
	stmts, _, err = p.ParseSQL(text)
	// The parser reuses its result slice: copy it before the parser goes back to the pool.
	return slices.Clone(stmts), err
}

// parseText returns sc.text[from:to] prepared for the TiDB parser: bind variables become
// parameter markers (:a → ?, or '!' after ESCAPE; ::a → (?), or row(?) after VALUES), MariaDB's /*M! and versioned
// /*!NNNNN executable comments become plain /*! (their SQL is always read, so no table is
// missed), and TiDB's /*T! comments, plain comments to MySQL, are neutralised.
func parseText(sc *scanned, from, to int) string {
	var sb strings.Builder
	sb.Grow(to - from + 8)
	cur := from
	prev := -1 // index of the previous code token
	for i, t := range sc.toks {
		if t.start < from || t.end > to {
			continue
		}
		switch t.kind {
		case tokBind:
			sb.WriteString(sc.text[cur:t.start])
			switch {
			case !t.list && prev >= 0 && sc.word(sc.toks[prev], "escape"):
				sb.WriteString("'!'") // the TiDB parser wants a literal after ESCAPE
			case !t.list:
				sb.WriteByte('?')
			case prev >= 0 && sc.word(sc.toks[prev], "values"):
				sb.WriteString("row(?)")
			default:
				sb.WriteString("(?)")
			}
			cur = t.end
		case tokExecOpen:
			sb.WriteString(sc.text[cur:t.start])
			sb.WriteString("/*! ")
			cur = t.end
		case tokComment:
			if strings.HasPrefix(sc.text[t.start:t.end], "/*T!") {
				sb.WriteString(sc.text[cur:t.start])
				sb.WriteString("/*T ")
				cur = t.start + 4
			}
		}
		if t.isCode() {
			prev = i
		}
	}
	sb.WriteString(sc.text[cur:to])
	return sb.String()
}
