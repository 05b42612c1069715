package schema

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/format"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // literal values for the TiDB parser

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// script is a SQL text cut into statements.
type script struct {
	// stmts are the statements' own texts in order, each trimmed of surrounding blanks and
	// of its terminating ';'. When the parser could not read the text, stmts is the whole
	// (trimmed) text as one element and parseErr says why.
	stmts    []string
	nodes    []ast.StmtNode // parallel to stmts; nil when parseErr != nil
	parseErr error
}

// parsed reports whether the parser read the text, so that stmts are known statements.
func (s script) parsed() bool { return s.parseErr == nil }

// splitter cuts texts into statements with TiDB's parser. A parser is not safe for
// concurrent use; the pool makes the splitter so, and reuses them.
type splitter struct {
	parsers sync.Pool
}

// split parses sql. An empty text (only blanks, comments or ';') gives no statements.
func (sp *splitter) split(sql string) script {
	nodes, err := sp.parse(sql)
	if err != nil {
		if t := strings.TrimSpace(sql); t != "" {
			return script{stmts: []string{t}, parseErr: err}
		}
		return script{parseErr: err}
	}
	s := script{stmts: make([]string, 0, len(nodes)), nodes: make([]ast.StmtNode, 0, len(nodes))}
	for _, n := range nodes {
		text := strings.TrimSpace(n.Text())
		text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
		if text == "" {
			continue
		}
		s.stmts = append(s.stmts, text)
		s.nodes = append(s.nodes, n)
	}
	return s
}

// parse runs one pooled parser over text; a parser panic is returned as an error and that
// parser is not reused.
func (sp *splitter) parse(text string) (stmts []ast.StmtNode, err error) {
	p, _ := sp.parsers.Get().(*parser.Parser)
	if p == nil {
		p = parser.New()
	}
	defer func() {
		if r := recover(); r != nil {
			stmts, err = nil, fmt.Errorf("parser failure: %v", r)
			return
		}
		sp.parsers.Put(p)
	}()
	stmts, _, err = p.ParseSQL(text)
	// The parser reuses its result slice: copy it before the parser goes back to the pool.
	return slices.Clone(stmts), err
}

// withSidecar returns s with the "_vt" database qualifier of its tables (and of SHOW … FROM
// _vt) replaced by sidecar, as vttablet's ReplaceTableQualifiers does. Statements without
// the qualifier keep their exact text; rewritten ones are printed back by the parser. With
// the default sidecar name nothing changes. A text the parser cannot read cannot be
// rewritten: that is an INVALID_ARGUMENT error, as in vttablet.
func withSidecar(s script, sidecar string) (script, error) {
	if sidecar == DefaultSidecarDBName || len(s.stmts) == 0 {
		return s, nil
	}
	if !s.parsed() {
		return s, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT,
			"cannot replace the %s qualifier by the sidecar database %s: the SQL parser cannot read the statement: %v",
			DefaultSidecarDBName, sidecar, s.parseErr)
	}
	out := script{stmts: slices.Clone(s.stmts), nodes: s.nodes}
	for i, n := range s.nodes {
		v := &qualifierRenamer{from: DefaultSidecarDBName, to: sidecar}
		n.Accept(v)
		if !v.changed {
			continue
		}
		var sb strings.Builder
		if err := n.Restore(format.NewRestoreCtx(format.DefaultRestoreFlags, &sb)); err != nil {
			return s, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "cannot rewrite %q for the sidecar database %s: %v", s.stmts[i], sidecar, err)
		}
		out.stmts[i] = sb.String()
	}
	return out, nil
}

// qualifierRenamer renames the database qualifier from → to (case-sensitively, as Vitess
// compares identifiers here) in table names and SHOW … FROM.
type qualifierRenamer struct {
	from, to string
	changed  bool
}

func (v *qualifierRenamer) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.TableName:
		if x.Schema.O == v.from {
			x.Schema = ast.NewCIStr(v.to)
			v.changed = true
		}
	case *ast.ShowStmt:
		if x.DBName == v.from {
			x.DBName = v.to
			v.changed = true
		}
	}
	return n, false
}

func (v *qualifierRenamer) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// vitessComment matches a Vitess directive comment: /*vt+ key=value key2 */.
var vitessComment = regexp.MustCompile(`(?s)/\*vt\+\s(.*?)\*/`)

// allowsZeroInDate reports whether a statement carries the /*vt+ allowZeroInDate=true */
// directive (vtctld adds it for --allow-zero-in-date): vttablet then drops NO_ZERO_DATE and
// NO_ZERO_IN_DATE from the session's sql_mode. A key without value means true.
func allowsZeroInDate(stmts []string) bool {
	for _, s := range stmts {
		for _, m := range vitessComment.FindAllStringSubmatch(s, -1) {
			for _, d := range strings.Fields(m[1]) {
				key, val, ok := strings.Cut(d, "=")
				if !ok {
					val = "true"
				}
				if on, _ := strconv.ParseBool(val); on && strings.EqualFold(key, "allowZeroInDate") {
					return true
				}
			}
		}
	}
	return false
}
