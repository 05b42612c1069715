package tabletmanager

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/proto/vttimepb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/topo"
)

// VReplication is the target-side engine the VReplication RPCs drive
// (vreplication/engine.Engine). The RPCs build vttablet's SQL and run it through Exec, which
// also starts, restarts and stops the streams a statement concerns.
type VReplication interface {
	Open()
	Close()
	Exec(ctx context.Context, query string, asDBA bool) (*querypb.QueryResult, error)
	WaitForPos(ctx context.Context, id int32, pos string) error
	// ValidatePermissions tries select, insert, update and delete of a vreplication row as
	// the filtered user, in a transaction it rolls back.
	ValidatePermissions(ctx context.Context, alias string) (user string, ok bool, msg string, err error)
}

// frozen is the message vtctld writes into a workflow whose traffic was switched.
const frozen = "FROZEN"

// simulatedNull is vtctld's "do not change" value in UpdateVReplicationWorkflowRequest
// (textutil.SimulatedNullInt, and "NULL" for string lists).
const simulatedNull = -1

// applyVReplication opens the engine on a PRIMARY (vttablet: "tablet type is PRIMARY") and
// closes it otherwise; a demoted primary's MySQL is read-only, so it stays closed too.
func (m *Manager) applyVReplication(tt topodatapb.TabletType, demoted bool) {
	if m.vre == nil {
		return
	}
	if tt == topodatapb.TabletType_PRIMARY && !demoted {
		m.vre.Open()
		return
	}
	m.vre.Close()
}

// SidecarDBName is the keyspace's sidecar database ("_vt" until the keyspace was read).
func (m *Manager) SidecarDBName() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sidecarDB
}

func (m *Manager) vreplication() (VReplication, error) {
	if m.vre == nil {
		return nil, rpcerr.New(vtrpcpb.Code_UNIMPLEMENTED, "this tablet does not run VReplication")
	}
	return m.vre, nil
}

func (m *Manager) dbName() string {
	if m.cfg.DBNameOverride != "" {
		return m.cfg.DBNameOverride
	}
	return "vt_" + m.cfg.Keyspace
}

func (m *Manager) sc() string { return "`" + strings.ReplaceAll(m.SidecarDBName(), "`", "``") + "`" }

// sqlString quotes s as a SQL literal.
func sqlString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\'':
			b.WriteString(`\'`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 26:
			b.WriteString(`\Z`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// typesCSV is vttablet's tablet_types column: lower-case names in the given order, with
// the in_order: hint for INORDER.
func typesCSV(types []topodatapb.TabletType, inOrder bool) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = strings.ToLower(t.String())
	}
	s := strings.Join(names, ",")
	if inOrder {
		s = "in_order:" + s
	}
	return s
}

// parseTypes reads a tablet_types column.
func parseTypes(s string) ([]topodatapb.TabletType, bool, error) {
	inOrder := false
	if rest, ok := strings.CutPrefix(s, "in_order:"); ok {
		inOrder, s = true, rest
	}
	var out []topodatapb.TabletType
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		up := strings.ToUpper(n)
		if up == "MASTER" {
			up = "PRIMARY"
		}
		v, ok := topodatapb.TabletType_value[up]
		if !ok {
			return nil, false, rpcerr.New(vtrpcpb.Code_INTERNAL, "error parsing the tablet_types field from vreplication table record: unknown tablet type %q", n)
		}
		out = append(out, topodatapb.TabletType(v))
	}
	return out, inOrder, nil
}

// CreateVReplicationWorkflow inserts one stopped stream per binlog source (vtctld starts
// them separately; auto_start is ignored, as by vttablet).
func (m *Manager) CreateVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.CreateVReplicationWorkflowRequest) (*tabletmanagerdatapb.CreateVReplicationWorkflowResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	if len(req.GetBinlogSource()) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid request, no binlog source specified")
	}
	if req.Workflow == "" {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid request, no workflow name specified")
	}
	if err := m.checkKeyspaceSources(req.BinlogSource); err != nil {
		return nil, err
	}
	cells := req.Cells
	if len(cells) == 0 || strings.TrimSpace(cells[0]) == "" {
		cells = []string{m.cfg.Alias.Cell}
	}
	types := typesCSV(req.TabletTypes, req.TabletSelectionPreference == tabletmanagerdatapb.TabletSelectionPreference_INORDER)
	options := req.Options
	if options == "" {
		options = "{}"
	}
	var affected uint64
	for _, bls := range req.BinlogSource {
		sortRules(bls)
		src, err := prototext.Marshal(bls)
		if err != nil {
			return nil, rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "binlog source")
		}
		q := fmt.Sprintf("insert into %s.vreplication (workflow, source, pos, max_tps, max_replication_lag, cell, tablet_types, "+
			"time_updated, transaction_timestamp, state, db_name, workflow_type, workflow_sub_type, defer_secondary_keys, options) "+
			"values (%s, %s, '', 0, 0, %s, %s, now(), 0, 'Stopped', %s, %d, %d, %d, %s)",
			m.sc(), sqlString(req.Workflow), sqlString(string(src)), sqlString(strings.Join(cells, ",")), sqlString(types),
			sqlString(m.dbName()), req.WorkflowType, req.WorkflowSubType, boolInt(req.DeferSecondaryKeys), sqlString(options))
		qr, err := vre.Exec(ctx, q, false)
		if err != nil {
			return nil, err
		}
		affected += qr.RowsAffected
	}
	return &tabletmanagerdatapb.CreateVReplicationWorkflowResponse{Result: &querypb.QueryResult{RowsAffected: affected}}, nil
}

// checkKeyspaceSources refuses a source naming no keyspace or shard, or a shard name that
// is not one.
func (m *Manager) checkKeyspaceSources(sources []*binlogdatapb.BinlogSource) error {
	for _, bls := range sources {
		if err := topo.ValidateKeyspaceName(bls.GetKeyspace()); err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "binlog source keyspace %q", bls.GetKeyspace())
		}
		if _, _, err := topo.ValidateShardName(bls.GetShard()); err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_INVALID_ARGUMENT, err, "binlog source shard %q", bls.GetShard())
		}
		if bls.GetFilter() == nil || len(bls.Filter.Rules) == 0 {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "binlog source %s/%s has no filter rules", bls.Keyspace, bls.Shard)
		}
	}
	return nil
}

// sortRules orders a source's rules as vttablet stores them: exclude rules first, then by
// match (without its leading '/') and filter.
func sortRules(bls *binlogdatapb.BinlogSource) {
	sort.Strings(bls.Tables)
	if bls.Filter == nil {
		return
	}
	sort.SliceStable(bls.Filter.Rules, func(i, j int) bool {
		a, b := bls.Filter.Rules[i], bls.Filter.Rules[j]
		if (a.Filter == "exclude") != (b.Filter == "exclude") {
			return a.Filter == "exclude"
		}
		ma, mb := strings.TrimPrefix(a.Match, "/"), strings.TrimPrefix(b.Match, "/")
		if ma != mb {
			return ma < mb
		}
		return a.Filter < b.Filter
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DeleteVReplicationWorkflow deletes a workflow's streams and their copy state.
func (m *Manager) DeleteVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.DeleteVReplicationWorkflowRequest) (*tabletmanagerdatapb.DeleteVReplicationWorkflowResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	if req.GetWorkflow() == "" {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid request, no workflow provided")
	}
	qr, err := vre.Exec(ctx, fmt.Sprintf("delete from %s.vreplication where workflow = %s and db_name = %s",
		m.sc(), sqlString(req.Workflow), sqlString(m.dbName())), false)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.DeleteVReplicationWorkflowResponse{Result: &querypb.QueryResult{RowsAffected: qr.RowsAffected}}, nil
}

// HasVReplicationWorkflows reports whether the database has any stream.
func (m *Manager) HasVReplicationWorkflows(ctx context.Context, _ *tabletmanagerdatapb.HasVReplicationWorkflowsRequest) (*tabletmanagerdatapb.HasVReplicationWorkflowsResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	qr, err := vre.Exec(ctx, fmt.Sprintf("select if(count(*) > 0, 1, 0) as has_workflows from %s.vreplication where db_name = %s",
		m.sc(), sqlString(m.dbName())), false)
	if err != nil {
		return nil, err
	}
	rows := named(qr)
	if len(rows) != 1 {
		return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "unexpected response to has_workflows: %d rows", len(rows))
	}
	return &tabletmanagerdatapb.HasVReplicationWorkflowsResponse{Has: rows[0].str("has_workflows") == "1"}, nil
}

// streamColumns are what the read RPCs select (vttablet's sqlReadVReplicationWorkflow).
const streamColumns = "id, source, pos, stop_pos, max_tps, max_replication_lag, cell, tablet_types, time_updated, " +
	"transaction_timestamp, state, message, db_name, rows_copied, tags, time_heartbeat, workflow_type, time_throttled, " +
	"component_throttled, workflow_sub_type, defer_secondary_keys, options"

// ReadVReplicationWorkflows returns the database's workflows, filtered as asked.
func (m *Manager) ReadVReplicationWorkflows(ctx context.Context, req *tabletmanagerdatapb.ReadVReplicationWorkflowsRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowsResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	var pred strings.Builder
	if req.GetExcludeFrozen() {
		pred.WriteString(" and message != '" + frozen + "'")
	}
	inList := func(col, not string, vals []string) {
		if len(vals) == 0 {
			return
		}
		fmt.Fprintf(&pred, " and %s %sin (%s)", col, not, strings.Join(vals, ","))
	}
	var ids, incl, excl, inSt, exSt []string
	for _, id := range req.GetIncludeIds() {
		ids = append(ids, strconv.Itoa(int(id)))
	}
	for _, w := range req.GetIncludeWorkflows() {
		incl = append(incl, sqlString(w))
	}
	for _, w := range req.GetExcludeWorkflows() {
		excl = append(excl, sqlString(w))
	}
	for _, s := range req.GetIncludeStates() {
		inSt = append(inSt, sqlString(s.String()))
	}
	for _, s := range req.GetExcludeStates() {
		exSt = append(exSt, sqlString(s.String()))
	}
	inList("id", "", ids)
	inList("workflow", "", incl)
	inList("workflow", "not ", excl)
	inList("state", "", inSt)
	inList("state", "not ", exSt)
	qr, err := vre.Exec(ctx, fmt.Sprintf("select workflow, %s from %s.vreplication where db_name = %s%s order by workflow, id",
		streamColumns, m.sc(), sqlString(m.dbName()), pred.String()), false)
	if err != nil {
		return nil, err
	}
	resp := &tabletmanagerdatapb.ReadVReplicationWorkflowsResponse{}
	byName := map[string]*tabletmanagerdatapb.ReadVReplicationWorkflowResponse{}
	for _, row := range named(qr) {
		name := row.str("workflow")
		wf := byName[name]
		if wf == nil {
			wf = &tabletmanagerdatapb.ReadVReplicationWorkflowResponse{Workflow: name}
			byName[name] = wf
			resp.Workflows = append(resp.Workflows, wf)
		}
		if err := fillWorkflow(wf, row); err != nil {
			return nil, err
		}
		st, err := streamOf(row)
		if err != nil {
			return nil, err
		}
		wf.Streams = append(wf.Streams, st)
	}
	return resp, nil
}

// ReadVReplicationWorkflow returns one workflow, or no response when it has no stream here
// (vtctld then sees an empty message).
func (m *Manager) ReadVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.ReadVReplicationWorkflowRequest) (*tabletmanagerdatapb.ReadVReplicationWorkflowResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	if req.GetWorkflow() == "" {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid request, no workflow provided")
	}
	qr, err := vre.Exec(ctx, fmt.Sprintf("select %s from %s.vreplication where workflow = %s and db_name = %s",
		streamColumns, m.sc(), sqlString(req.Workflow), sqlString(m.dbName())), false)
	if err != nil {
		return nil, err
	}
	rows := named(qr)
	if len(rows) == 0 {
		return nil, nil
	}
	wf := &tabletmanagerdatapb.ReadVReplicationWorkflowResponse{Workflow: req.Workflow}
	if err := fillWorkflow(wf, rows[0]); err != nil {
		return nil, err
	}
	for _, row := range rows {
		st, err := streamOf(row)
		if err != nil {
			return nil, err
		}
		wf.Streams = append(wf.Streams, st)
	}
	return wf, nil
}

// fillWorkflow sets the per-workflow fields from a stream's row.
func fillWorkflow(wf *tabletmanagerdatapb.ReadVReplicationWorkflowResponse, row namedRow) error {
	types, inOrder, err := parseTypes(row.str("tablet_types"))
	if err != nil {
		return err
	}
	wf.Cells, wf.TabletTypes, wf.DbName, wf.Tags = row.str("cell"), types, row.str("db_name"), row.str("tags")
	wf.TabletSelectionPreference = tabletmanagerdatapb.TabletSelectionPreference_ANY
	if inOrder {
		wf.TabletSelectionPreference = tabletmanagerdatapb.TabletSelectionPreference_INORDER
	}
	wf.WorkflowType = binlogdatapb.VReplicationWorkflowType(row.num("workflow_type"))
	wf.WorkflowSubType = binlogdatapb.VReplicationWorkflowSubType(row.num("workflow_sub_type"))
	wf.DeferSecondaryKeys = row.str("defer_secondary_keys") == "1"
	wf.Options = row.str("options")
	return nil
}

func streamOf(row namedRow) (*tabletmanagerdatapb.ReadVReplicationWorkflowResponse_Stream, error) {
	bls := &binlogdatapb.BinlogSource{}
	if err := prototext.Unmarshal([]byte(row.str("source")), bls); err != nil {
		return nil, rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "error unmarshaling binlog_source field from vreplication table record")
	}
	ts := func(col string) *vttimepb.Time { return &vttimepb.Time{Seconds: row.num(col)} }
	return &tabletmanagerdatapb.ReadVReplicationWorkflowResponse_Stream{
		Id: int32(row.num("id")), Bls: bls, Pos: row.str("pos"), StopPos: row.str("stop_pos"),
		MaxTps: row.num("max_tps"), MaxReplicationLag: row.num("max_replication_lag"),
		TimeUpdated: ts("time_updated"), TransactionTimestamp: ts("transaction_timestamp"),
		State:   binlogdatapb.VReplicationWorkflowState(binlogdatapb.VReplicationWorkflowState_value[row.str("state")]),
		Message: row.str("message"), RowsCopied: row.num("rows_copied"), TimeHeartbeat: ts("time_heartbeat"),
		TimeThrottled: ts("time_throttled"), ComponentThrottled: row.str("component_throttled"),
	}, nil
}

// namedRow is a result row by column name; NULL reads as "".
type namedRow map[string]string

func (r namedRow) str(col string) string { return r[col] }

func (r namedRow) num(col string) int64 {
	n, _ := strconv.ParseInt(r[col], 10, 64)
	return n
}

func named(qr *querypb.QueryResult) []namedRow {
	out := make([]namedRow, 0, len(qr.GetRows()))
	for _, row := range qr.GetRows() {
		nr := namedRow{}
		off := int64(0)
		for i, f := range qr.Fields {
			if i >= len(row.Lengths) {
				break
			}
			l := row.Lengths[i]
			if l < 0 {
				continue
			}
			nr[f.Name] = string(row.Values[off : off+l])
			off += l
		}
		out = append(out, nr)
	}
	return out
}

// UpdateVReplicationWorkflow changes the state, cells, tablet types, on_ddl, filter rules,
// message and config overrides of each stream of a workflow, which restarts it. Setting
// Running on a stream that still has tables to copy sets Copying. A workflow without streams
// here (a Reshard source) gives an empty result, not an error.
func (m *Manager) UpdateVReplicationWorkflow(ctx context.Context, req *tabletmanagerdatapb.UpdateVReplicationWorkflowRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	qr, err := vre.Exec(ctx, fmt.Sprintf("select id, source, cell, tablet_types, state, message from %s.vreplication where workflow = %s",
		m.sc(), sqlString(req.GetWorkflow())), false)
	if err != nil {
		return nil, err
	}
	rows := named(qr)
	if len(rows) == 0 {
		return &tabletmanagerdatapb.UpdateVReplicationWorkflowResponse{}, nil
	}
	var affected uint64
	for _, row := range rows {
		q, err := m.updateStreamSQL(ctx, vre, req, row)
		if err != nil {
			return nil, err
		}
		res, err := vre.Exec(ctx, q, false)
		if err != nil {
			return nil, err
		}
		affected += res.RowsAffected
	}
	return &tabletmanagerdatapb.UpdateVReplicationWorkflowResponse{Result: &querypb.QueryResult{RowsAffected: affected}}, nil
}

// updateStreamSQL is the update of one stream's row for UpdateVReplicationWorkflow.
func (m *Manager) updateStreamSQL(ctx context.Context, vre VReplication, req *tabletmanagerdatapb.UpdateVReplicationWorkflowRequest, row namedRow) (string, error) {
	id := row.num("id")
	cells := strings.Split(row.str("cell"), ",")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	types, inOrder, err := parseTypes(row.str("tablet_types"))
	if err != nil {
		return "", err
	}
	state, message := row.str("state"), row.str("message")
	if req.State != nil && *req.State == binlogdatapb.VReplicationWorkflowState_Running && strings.ToUpper(message) == frozen {
		return "", rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "cannot start a workflow when it is frozen")
	}
	if !(len(req.Cells) == 1 && req.Cells[0] == "NULL") {
		cells = req.Cells
	}
	if !(len(req.TabletTypes) == 1 && req.TabletTypes[0] == simulatedNull) {
		types = req.TabletTypes
	}
	if req.Message != nil {
		message = *req.Message
	}
	if req.TabletSelectionPreference != nil {
		switch *req.TabletSelectionPreference {
		case tabletmanagerdatapb.TabletSelectionPreference_INORDER:
			inOrder = true
		case tabletmanagerdatapb.TabletSelectionPreference_ANY:
			inOrder = false
		}
	}
	bls := &binlogdatapb.BinlogSource{}
	if err := prototext.Unmarshal([]byte(row.str("source")), bls); err != nil {
		return "", rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "stream %d: source", id)
	}
	if req.OnDdl != nil && *req.OnDdl != simulatedNull {
		bls.OnDdl = *req.OnDdl
	}
	if len(req.FilterRules) > 0 {
		if bls.Filter == nil {
			bls.Filter = &binlogdatapb.Filter{}
		}
		bls.Filter.Rules = append(bls.Filter.Rules, req.FilterRules...)
	}
	src, err := prototext.Marshal(bls)
	if err != nil {
		return "", rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "stream %d: source", id)
	}
	if req.State != nil && *req.State != simulatedNull {
		name, ok := binlogdatapb.VReplicationWorkflowState_name[int32(*req.State)]
		if !ok {
			return "", rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid state value: %v", *req.State)
		}
		state = name
	}
	if state == binlogdatapb.VReplicationWorkflowState_Running.String() {
		cs, err := vre.Exec(ctx, fmt.Sprintf("select distinct vrepl_id from %s.copy_state where vrepl_id = %d", m.sc(), id), false)
		if err != nil {
			return "", err
		}
		if len(cs.Rows) > 0 {
			state = binlogdatapb.VReplicationWorkflowState_Copying.String()
		}
	}
	return fmt.Sprintf("update %s.vreplication set state = %s, source = %s, cell = %s, tablet_types = %s, message = %s%s where id = %d",
		m.sc(), sqlString(state), sqlString(string(src)), sqlString(strings.Join(cells, ",")), sqlString(typesCSV(types, inOrder)),
		sqlString(message), optionSet(req.ConfigOverrides), id), nil
}

// optionSet is vttablet's options update for config overrides: json_set for values,
// json_remove for keys given empty.
func optionSet(config map[string]string) string {
	if len(config) == 0 {
		return ""
	}
	var keys, deleted []string
	for k, v := range config {
		if strings.TrimSpace(v) == "" {
			deleted = append(deleted, k)
		} else {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	sort.Strings(deleted)
	clause := "options"
	if len(deleted) > 0 {
		parts := make([]string, len(deleted))
		for i, k := range deleted {
			parts[i] = sqlString(`$.config."` + k + `"`)
		}
		clause = fmt.Sprintf("json_remove(options, %s)", strings.Join(parts, ", "))
	}
	if len(keys) > 0 {
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = sqlString(`$.config."`+k+`"`) + ", " + sqlString(strings.TrimSpace(config[k]))
		}
		clause = fmt.Sprintf("json_set(%s, '$.config', json_object(), %s)", clause, strings.Join(parts, ", "))
	}
	return ", options = " + clause
}

// UpdateVReplicationWorkflows changes state, message and stop position of several workflows.
func (m *Manager) UpdateVReplicationWorkflows(ctx context.Context, req *tabletmanagerdatapb.UpdateVReplicationWorkflowsRequest) (*tabletmanagerdatapb.UpdateVReplicationWorkflowsResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	if req.GetAllWorkflows() && (len(req.GetIncludeWorkflows()) > 0 || len(req.GetExcludeWorkflows()) > 0) {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "cannot specify all workflows along with either of include or exclude workflows")
	}
	var sets []string
	if req.State != nil && *req.State != simulatedNull {
		name, ok := binlogdatapb.VReplicationWorkflowState_name[int32(*req.State)]
		if !ok {
			return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid state value: %v", *req.State)
		}
		sets = append(sets, "state = "+sqlString(name))
	}
	if req.Message != nil && *req.Message != "NULL" {
		sets = append(sets, "message = "+sqlString(*req.Message))
	}
	if req.StopPosition != nil && *req.StopPosition != "NULL" {
		sets = append(sets, "stop_pos = "+sqlString(*req.StopPosition))
	}
	if len(sets) == 0 {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "no field values provided to update")
	}
	var pred strings.Builder
	for _, part := range []struct {
		not  string
		list []string
	}{{"", req.GetIncludeWorkflows()}, {"not ", req.GetExcludeWorkflows()}} {
		if len(part.list) == 0 {
			continue
		}
		quoted := make([]string, len(part.list))
		for i, w := range part.list {
			quoted[i] = sqlString(w)
		}
		fmt.Fprintf(&pred, " and workflow %sin (%s)", part.not, strings.Join(quoted, ","))
	}
	qr, err := vre.Exec(ctx, fmt.Sprintf("update /*vt+ ALLOW_UNSAFE_VREPLICATION_WRITE */ %s.vreplication set %s where db_name = %s%s",
		m.sc(), strings.Join(sets, ", "), sqlString(m.dbName()), pred.String()), false)
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.UpdateVReplicationWorkflowsResponse{Result: &querypb.QueryResult{RowsAffected: qr.RowsAffected}}, nil
}

// VReplicationExec runs one statement of vttablet's restricted VReplication set as the dba
// user; anything else is refused with INVALID_ARGUMENT.
func (m *Manager) VReplicationExec(ctx context.Context, query string) (*querypb.QueryResult, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	return vre.Exec(ctx, query, true)
}

// VReplicationWaitForPos waits until stream id has applied pos.
func (m *Manager) VReplicationWaitForPos(ctx context.Context, id int32, pos string) error {
	vre, err := m.vreplication()
	if err != nil {
		return err
	}
	return vre.WaitForPos(ctx, id, pos)
}

// ValidateVReplicationPermissions checks that the filtered user can manage vreplication rows.
func (m *Manager) ValidateVReplicationPermissions(ctx context.Context) (*tabletmanagerdatapb.ValidateVReplicationPermissionsResponse, error) {
	vre, err := m.vreplication()
	if err != nil {
		return nil, err
	}
	user, ok, msg, err := vre.ValidatePermissions(ctx, topo.AliasString(m.cfg.Alias))
	if err != nil {
		return nil, err
	}
	return &tabletmanagerdatapb.ValidateVReplicationPermissionsResponse{User: user, Ok: ok, Error: msg}, nil
}
