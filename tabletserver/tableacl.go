package tabletserver

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tabletd/tabletd/acl"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver/plan"
	"github.com/tabletd/tabletd/tabletserver/rules"
)

// ACLConfig says how table ACLs are enforced; field comments name vttablet's flags.
type ACLConfig struct {
	Strict bool   // --queryserver-config-strict-table-acl: a failed check is an error
	DryRun bool   // --queryserver-config-enable-table-acl-dry-run: only count failures
	Exempt string // --queryserver-config-acl-exempt-acl: a user or group never checked
	// MetricsByUser also counts denials per user (--table-acl-denied-metrics-by-user).
	MetricsByUser bool
}

// maxLabelValues bounds the distinct table (or user) label values of the denial metrics.
const maxLabelValues = 1000

// boundedLabels hands out label values: the first maxLabelValues distinct ones as given,
// later ones as "other", so callers naming made-up tables cannot grow /metrics without bound.
// Only denials reach it, never the allowed path.
type boundedLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (b *boundedLabels) value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= maxLabelValues {
		return "other"
	}
	if b.seen == nil {
		b.seen = map[string]struct{}{}
	}
	b.seen[v] = struct{}{}
	return v
}

// tableACL holds the current ACL; nil means no ACL is configured and nothing is checked.
// It is swapped atomically on reload, so a query sees either the old ACL or the new one.
type tableACL struct {
	cfg     ACLConfig
	db      string // the tablet's database: tables qualified with it are checked by bare name
	current atomic.Pointer[acl.ACL]
	denied  *prometheus.CounterVec // table, role
	pseudo  *prometheus.CounterVec // dry-run denials: table, role
	byUser  *prometheus.CounterVec // user (only with MetricsByUser)
	exempt  prometheus.Counter
	tables  boundedLabels
	users   boundedLabels
}

func newTableACL(cfg ACLConfig, db string, reg prometheus.Registerer, labels prometheus.Labels) (*tableACL, error) {
	t := &tableACL{cfg: cfg, db: db,
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_table_acl_denied_total",
			Help: "Statements refused by the table ACL, by table and missing role.", ConstLabels: labels}, []string{"table", "role"}),
		pseudo: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_table_acl_pseudo_denied_total",
			Help: "Table ACL failures let through by dry-run or non-strict mode.", ConstLabels: labels}, []string{"table", "role"}),
		exempt: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_table_acl_exempt_total",
			Help: "Statements not checked because the caller is exempt.", ConstLabels: labels}),
	}
	cols := []prometheus.Collector{t.denied, t.pseudo, t.exempt}
	if cfg.MetricsByUser {
		t.byUser = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tabletd_table_acl_denied_by_user_total",
			Help: "Table ACL failures (refused or let through by dry-run), by immediate caller.", ConstLabels: labels}, []string{"user"})
		cols = append(cols, t.byUser)
	}
	for _, c := range cols {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// SetTableACL installs a (re)loaded ACL; nil turns checking off.
func (s *Server) SetTableACL(a *acl.ACL) { s.exec.acl.current.Store(a) }

var planRoles = map[plan.Role]acl.Role{plan.Reader: acl.Reader, plan.Writer: acl.Writer, plan.Admin: acl.Admin}

// check enforces the ACL on every table the statement touches.
func (t *tableACL) check(p *plan.Plan, user string, groups []string) error {
	a := t.current.Load()
	if a == nil {
		return nil
	}
	if t.cfg.Exempt != "" && (user == t.cfg.Exempt || slices.Contains(groups, t.cfg.Exempt)) {
		t.exempt.Inc()
		return nil
	}
	if user == "" && len(groups) == 0 {
		if t.cfg.Strict {
			return rpcerr.New(vtrpcpb.Code_UNAUTHENTICATED, "missing caller id")
		}
		return nil
	}
	if !p.TablesComplete {
		// The statement's tables could not be read: never let it through unchecked.
		return t.refuse(p, user, groups, "?", acl.Reader, "the statement's tables cannot be determined")
	}
	if p.Type == plan.CallProcedure || p.Fallback == plan.CallProcedure {
		// A procedure reads and writes whatever its body says, unseen here: fail closed.
		return t.refuse(p, user, groups, "?", acl.Admin, "a stored procedure's tables cannot be checked; only an exempt caller may CALL")
	}
	for _, tr := range p.Tables {
		role, ok := planRoles[tr.Role]
		if !ok {
			continue
		}
		name := t.aclName(tr)
		if a.Allowed(name, role, user, groups) {
			continue
		}
		if err := t.refuse(p, user, groups, name, role, ""); err != nil {
			return err
		}
	}
	return nil
}

// checkRead enforces the ACL's reader role on tables of the tablet's own database for a
// streaming reader (VStream's binlog events carry no statement to plan): the same rules as
// check, with the refusal naming a Select.
func (t *tableACL) checkRead(tables []string, user string, groups []string) error {
	if t.current.Load() == nil {
		return nil
	}
	p := &plan.Plan{Type: plan.Select, TablesComplete: true}
	for _, name := range tables {
		p.Tables = append(p.Tables, plan.TableRef{Name: name, Role: plan.Reader})
	}
	return t.check(p, user, groups)
}

// aclName is the name a table is checked under: its bare name in the tablet's own database
// (qualified or not, as vttablet checks it), and "schema.table" in any other schema, so a
// grant on the application's table "user" never opens mysql.user, and information_schema,
// performance_schema or another database need a group naming them ("information_schema.%",
// or the catch-all "%").
func (t *tableACL) aclName(tr plan.TableRef) string {
	if tr.Qualifier == "" || tr.Qualifier == t.db {
		return tr.Name
	}
	return tr.Qualifier + "." + tr.Name
}

// refuse counts a failed check and, in strict mode, returns vttablet's error text with the
// missing role added.
func (t *tableACL) refuse(p *plan.Plan, user string, groups []string, table string, role acl.Role, why string) error {
	label := t.tables.value(table)
	if t.byUser != nil {
		t.byUser.WithLabelValues(t.users.value(user)).Inc()
	}
	if t.cfg.DryRun || !t.cfg.Strict {
		t.pseudo.WithLabelValues(label, role.String()).Inc()
		return nil
	}
	t.denied.WithLabelValues(label, role.String()).Inc()
	inGroups := ""
	if len(groups) > 0 {
		inGroups = fmt.Sprintf(", in groups [%s],", strings.Join(groups, ", "))
	}
	detail := role.String() + " required"
	if why != "" {
		detail = why
	}
	return rpcerr.WithCause(vtrpcpb.Code_PERMISSION_DENIED,
		fmt.Sprintf("%s command denied to user '%s'%s for table '%s' (ACL check error: %s)", p.Type, user, inGroups, table, detail),
		&acl.DeniedError{User: user, Table: table, Role: role})
}

// queryRules holds the rule sources; the combined list is rebuilt on any change and read
// atomically by every statement.
type queryRules struct {
	mu       sync.Mutex
	file     *rules.Rules // --filecustomrules
	denied   *rules.Rules // Shard.tablet_controls denied tables
	combined atomic.Pointer[rules.Rules]
}

func (q *queryRules) set(file, denied *rules.Rules, setFile, setDenied bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if setFile {
		q.file = file
	}
	if setDenied {
		q.denied = denied
	}
	q.combined.Store(q.denied.Append(q.file))
}

// SetQueryRules installs the rules of the custom rules file (nil: none).
func (s *Server) SetQueryRules(r *rules.Rules) { s.exec.rules.set(r, nil, true, false) }

// SetDeniedTables installs the denied-tables rule built from the shard's tablet controls
// (MoveTables cut-over); vtgate buffers on its "disallowed due to rule" error.
func (s *Server) SetDeniedTables(tables []string) {
	s.exec.rules.set(nil, rules.New(rules.DeniedTables(tables)), false, true)
}

// checkRules returns the error of the first rule the statement matches. Rules match DDL too,
// and User is the immediate caller.
func (e *executor) checkRules(r *request) error {
	rs := e.rules.combined.Load()
	if rs.Len() == 0 {
		return nil
	}
	rule, ok := rs.Match(rules.Query{Plan: r.plan, SQL: r.SQL, BindVars: r.BindVars, User: r.Caller})
	if !ok {
		return nil
	}
	return rule.Err()
}
