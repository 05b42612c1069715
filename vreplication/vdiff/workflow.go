package vdiff

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// VDiff states (vttablet's controller.go).
const (
	statePending   = "pending"
	stateStarted   = "started"
	stateStopped   = "stopped"
	stateCompleted = "completed"
	stateError     = "error"
)

// stream is one _vt.vreplication row of the workflow.
type stream struct {
	id             int32
	source         *binlogdatapb.BinlogSource
	pos            string
	state, message string
}

// workflow is what a diff needs of the workflow's streams on this tablet.
type workflow struct {
	name           string
	streams        []*stream // by id
	sourceKeyspace string
	filter         *binlogdatapb.Filter // the first stream's (every stream has the same rules)
	workflowType   binlogdatapb.VReplicationWorkflowType
}

func (e *Engine) readWorkflow(ctx context.Context, c *conn, name string) (*workflow, error) {
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlWorkflowStreams, quoteString(name), quoteString(e.cfg.DBName)))
	if err != nil {
		return nil, err
	}
	rows := namedRows(qr)
	if len(rows) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_NOT_FOUND, "no vreplication streams found for workflow %s in database %s on tablet %s", name, e.cfg.DBName, e.alias())
	}
	wf := &workflow{name: name}
	for i, r := range rows {
		id, _ := strconv.ParseInt(r["id"], 10, 32)
		s := &stream{id: int32(id), pos: r["pos"], state: r["state"], message: r["message"], source: &binlogdatapb.BinlogSource{}}
		if err := prototext.Unmarshal([]byte(r["source"]), s.source); err != nil {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "stream %d of workflow %s: the source column is not a BinlogSource: %v", id, name, err)
		}
		if s.source.ExternalMysql != "" || s.source.ExternalCluster != "" {
			return nil, rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "workflow %s reads from an external source (%s%s): VDiff of external sources is not supported by tabletd",
				name, s.source.ExternalMysql, s.source.ExternalCluster)
		}
		if i == 0 {
			wf.sourceKeyspace, wf.filter = s.source.Keyspace, s.source.Filter
			wt, _ := strconv.ParseInt(r["workflow_type"], 10, 32)
			wf.workflowType = binlogdatapb.VReplicationWorkflowType(wt)
		}
		for _, o := range wf.streams {
			if o.source.Shard == s.source.Shard {
				return nil, rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "workflow %s has two streams (%d, %d) from source shard %s", name, o.id, s.id, s.source.Shard)
			}
		}
		wf.streams = append(wf.streams, s)
	}
	return wf, nil
}

// targetTables lists the base tables of this tablet's database, sorted.
func (e *Engine) targetTables(ctx context.Context, c *conn) ([]string, error) {
	qr, err := c.exec(ctx, "select table_name as table_name from information_schema.tables where table_schema = "+
		quoteString(e.cfg.DBName)+" and table_type = 'BASE TABLE'")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range namedRows(qr) {
		out = append(out, r["table_name"])
	}
	sort.Strings(out)
	return out, nil
}

// matchRule returns the filter rule that decides for table (the first matching by name or
// /regexp/), or nil.
func matchRule(table string, f *binlogdatapb.Filter) (*binlogdatapb.Rule, error) {
	for _, r := range f.GetRules() {
		if strings.HasPrefix(r.Match, "/") {
			re, err := regexp.Compile(strings.Trim(r.Match, "/"))
			if err != nil {
				return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "filter rule %q: bad regular expression: %v", r.Match, err)
			}
			if re.MatchString(table) {
				return r, nil
			}
			continue
		}
		if r.Match == table {
			return r, nil
		}
	}
	return nil, nil
}

// internalTable reports Vitess's internal operation tables (online DDL's _vt_… shadow and
// GC tables), which a diff never compares.
var internalTable = regexp.MustCompile(`^_vt_[a-z]{3,4}_[0-9a-f]{32}_[0-9]{14}_$|^_vt_(HOLD|PURGE|EVAC|DROP)_[0-9a-f]{32}_[0-9]{14}$|^_[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}_[0-9]{14}_(gho|ghc|del|new|vrepl)$`)

// diffTables are the tables a diff compares, with the source query each: the workflow's
// tables (those its filter selects, not excluded), restricted to the --tables list when
// given, sorted by name.
func diffTables(tables []string, f *binlogdatapb.Filter, only []string) ([]*tableSpec, error) {
	var out []*tableSpec
	for _, t := range tables {
		if len(only) > 0 && !containsString(only, t) {
			continue
		}
		if internalTable.MatchString(t) {
			continue
		}
		r, err := matchRule(t, f)
		if err != nil {
			return nil, err
		}
		if r == nil || r.Filter == "exclude" {
			continue
		}
		q := r.Filter
		switch {
		case q == "":
			q = "select * from " + quoteID(t)
		case isKeyRange(q):
			q = "select * from " + quoteID(t) + " where in_keyrange(" + quoteString(q) + ")"
		}
		out = append(out, &tableSpec{name: t, sourceQuery: q})
	}
	return out, nil
}

var keyRangeRE = regexp.MustCompile(`^([0-9a-fA-F]*)-([0-9a-fA-F]*)$`)

// isKeyRange reports whether a rule's filter is a key range ("-80", "80-", "40-80", "-").
func isKeyRange(s string) bool {
	m := keyRangeRE.FindStringSubmatch(s)
	return m != nil && len(m[1])%2 == 0 && len(m[2])%2 == 0
}
