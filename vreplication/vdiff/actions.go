package vdiff

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// The actions and arguments of a VDiffRequest (vttablet's vdiff.VDiffAction).
const (
	ActionCreate = "create"
	ActionShow   = "show"
	ActionStop   = "stop"
	ActionResume = "resume"
	ActionDelete = "delete"
	ArgAll       = "all"
	ArgLast      = "last"

	maxVDiffsToReport = 100
)

// Perform runs a TabletManager VDiff action and answers as vttablet does: create and resume
// return the diff's id and UUID, show its summary rows (one per table) or, for "all", the
// keyspace and workflow's recent _vt.vdiff rows.
func (e *Engine) Perform(ctx context.Context, req *tabletmanagerdatapb.VDiffRequest) (resp *tabletmanagerdatapb.VDiffResponse, err error) {
	defer func() {
		if err != nil {
			e.stats.errors.Add(1)
		}
	}()
	if req == nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "nil vdiff request")
	}
	if !e.IsOpen() {
		return nil, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "vdiff engine is closed")
	}
	c := newConn(e.cfg.Conn)
	defer c.close()
	resp = &tabletmanagerdatapb.VDiffResponse{}
	switch strings.ToLower(req.Action) {
	case ActionCreate:
		err = e.create(ctx, c, req, resp)
	case ActionResume:
		err = e.resume(ctx, c, req, resp)
	case ActionShow:
		err = e.show(ctx, c, req, resp)
	case ActionStop:
		err = e.stopAction(ctx, c, req)
	case ActionDelete:
		err = e.deleteAction(ctx, c, req)
	default:
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "action %s not supported", req.Action)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// parseUUID normalises a UUID (vttablet parses it with google/uuid: lower-case canonical).
func parseUUID(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(s, "urn:uuid:"), "}"), "{")
	if len(s) == 32 {
		s = s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	if len(s) != 36 {
		return "", false
	}
	for i, ch := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return "", false
			}
		case ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f':
		default:
			return "", false
		}
	}
	return s, true
}

func (e *Engine) vdiffID(ctx context.Context, c *conn, uuid string) (int64, bool, error) {
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffID, quoteString(uuid)))
	if err != nil {
		return 0, false, err
	}
	rows := namedRows(qr)
	if len(rows) == 0 {
		return 0, false, nil
	}
	return rows[0].int64("id"), true, nil
}

func (e *Engine) create(ctx context.Context, c *conn, req *tabletmanagerdatapb.VDiffRequest, resp *tabletmanagerdatapb.VDiffResponse) error {
	uuid, ok := parseUUID(req.VdiffUuid)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid vdiff UUID %q", req.VdiffUuid)
	}
	if _, found, err := e.vdiffID(ctx, c, uuid); err != nil {
		return err
	} else if found {
		return rpcerr.New(vtrpcpb.Code_ALREADY_EXISTS, "vdiff with UUID %s already exists on tablet %s", uuid, e.alias())
	}
	opts := withDefaults(req.Options)
	if err := e.checkCreate(ctx, c, req.Workflow, opts); err != nil {
		return err
	}
	if opts.PickerOptions.SourceCell == "" || opts.PickerOptions.TargetCell == "" {
		cells, err := e.deps.Topo.CellNames(ctx)
		if err != nil {
			return rpcerr.Wrap(vtrpcpb.Code_UNAVAILABLE, err, "reading the topology's cells")
		}
		sort.Strings(cells)
		all := strings.Join(cells, ",")
		if opts.PickerOptions.SourceCell == "" {
			opts.PickerOptions.SourceCell = all
		}
		if opts.PickerOptions.TargetCell == "" {
			opts.PickerOptions.TargetCell = all
		}
	}
	js, err := json.Marshal(opts)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "encoding the vdiff options")
	}
	state := statePending
	if opts.CoreOptions.AutoStart != nil && !opts.CoreOptions.GetAutoStart() {
		state = stateStopped
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlNewVDiff, quoteString(req.Keyspace), quoteString(req.Workflow), quoteString(state),
		quoteString(string(js)), quoteString(e.cfg.Shard), quoteString(e.cfg.DBName), quoteString(uuid)))
	if err != nil {
		return err
	}
	if qr.InsertId == 0 {
		return rpcerr.New(vtrpcpb.Code_INTERNAL, "unable to create vdiff for UUID %s on tablet %s", uuid, e.alias())
	}
	resp.Id, resp.VdiffUuid = int64(qr.InsertId), uuid
	return e.startByID(ctx, c, resp.Id, opts)
}

// checkCreate refuses a diff that cannot run: a workflow without streams on this tablet, one
// whose traffic was switched (frozen) or that is not running, or a table list naming a table
// the workflow does not replicate.
func (e *Engine) checkCreate(ctx context.Context, c *conn, workflow string, opts *tabletmanagerdatapb.VDiffOptions) error {
	wf, err := e.readWorkflow(ctx, c, workflow)
	if err != nil {
		return err
	}
	for _, s := range wf.streams {
		if s.message == "FROZEN" {
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "invalid VDiff run: writes have been already been switched for workflow %s.%s", e.cfg.Keyspace, workflow)
		}
	}
	for _, s := range wf.streams {
		if s.state != "Running" {
			return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "not all streams are running in workflow %s.%s (stream %d is %s)", e.cfg.Keyspace, workflow, s.id, s.state)
		}
	}
	if strings.TrimSpace(opts.CoreOptions.Tables) == "" {
		return nil
	}
	tables, err := e.targetTables(ctx, c)
	if err != nil {
		return err
	}
	for _, t := range splitList(opts.CoreOptions.Tables) {
		if !containsString(tables, t) {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s is not in database %s of tablet %s: it is not part of workflow %s", t, e.cfg.DBName, e.alias(), workflow)
		}
		if rule, err := matchRule(t, wf.filter); err != nil {
			return err
		} else if rule == nil || rule.Filter == "exclude" {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table %s is not part of workflow %s: no rule of its filter selects it", t, workflow)
		}
	}
	return nil
}

// startByID reads a vdiff row and starts its controller (unless it is stopped: auto_start
// false).
func (e *Engine) startByID(ctx context.Context, c *conn, id int64, opts *tabletmanagerdatapb.VDiffOptions) error {
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffByID, id))
	if err != nil {
		return err
	}
	rows := namedRows(qr)
	if len(rows) != 1 {
		return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "no vdiff found for id %d on tablet %s", id, e.alias())
	}
	if rows[0]["state"] != statePending {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startLocked(rows[0], opts)
	return nil
}

func (e *Engine) resume(ctx context.Context, c *conn, req *tabletmanagerdatapb.VDiffRequest, resp *tabletmanagerdatapb.VDiffResponse) error {
	uuid, ok := parseUUID(req.VdiffUuid)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid vdiff UUID %q", req.VdiffUuid)
	}
	id, found, err := e.vdiffID(ctx, c, uuid)
	if err != nil {
		return err
	}
	if !found {
		return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "vdiff with UUID %s not found on tablet %s", uuid, e.alias())
	}
	e.mu.Lock()
	running := e.runningLocked(id)
	e.mu.Unlock()
	if running {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "vdiff %s is running on tablet %s: stop it first", uuid, e.alias())
	}
	// A completed or stopped diff goes on after the last key compared; one never started
	// starts; one stopped before its tables were listed starts from scratch.
	resumed := false
	for _, q := range []string{sqlResumeVDiff, sqlStartVDiff,
		"update %[1]s.vdiff set state = 'pending', started_at = NULL, completed_at = NULL where vdiff_uuid = %s and state = 'stopped'"} {
		qr, err := c.exec(ctx, sqlf(e.sc(), q, quoteString(uuid)))
		if err != nil {
			return err
		}
		if qr.RowsAffected > 0 {
			resumed = true
			break
		}
	}
	if !resumed {
		return rpcerr.New(vtrpcpb.Code_FAILED_PRECONDITION, "no completed or stopped vdiff found for UUID %s on tablet %s", uuid, e.alias())
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffByID, id))
	if err != nil {
		return err
	}
	rows := namedRows(qr)
	if len(rows) != 1 {
		return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "vdiff with UUID %s not found on tablet %s", uuid, e.alias())
	}
	// The stored options, read as vttablet reads them on resume (protojson).
	opts := &tabletmanagerdatapb.VDiffOptions{}
	if s := rows[0]["options"]; s != "" {
		if err := protojson.Unmarshal([]byte(s), opts); err != nil {
			return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "vdiff %s has unreadable options %q: %v", uuid, s, err)
		}
	}
	insertLog(ctx, c, e.sc(), id, "State changed to: pending (resumed by user request)")
	resp.Id, resp.VdiffUuid = id, uuid
	e.mu.Lock()
	defer e.mu.Unlock()
	e.startLocked(rows[0], withDefaults(opts))
	return nil
}

func (e *Engine) show(ctx context.Context, c *conn, req *tabletmanagerdatapb.VDiffRequest, resp *tabletmanagerdatapb.VDiffResponse) error {
	arg := strings.ToLower(strings.TrimSpace(req.ActionArg))
	switch arg {
	case ArgAll:
		qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetRecentVDiffs, quoteString(req.Keyspace), quoteString(req.Workflow), maxVDiffsToReport))
		if err != nil {
			return err
		}
		resp.Output = qr
		return nil
	case ArgLast:
		qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetRecentVDiffs, quoteString(req.Keyspace), quoteString(req.Workflow), 1))
		if err != nil {
			return err
		}
		rows := namedRows(qr)
		if len(rows) == 0 {
			return nil // vtctldclient: "No previous vdiff found"
		}
		return e.summary(ctx, c, rows[0].int64("id"), rows[0]["vdiff_uuid"], resp)
	}
	uuid, ok := parseUUID(arg)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "action argument %s not supported", req.ActionArg)
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffByUUID, quoteString(req.Keyspace), quoteString(req.Workflow), quoteString(uuid)))
	if err != nil {
		return err
	}
	rows := namedRows(qr)
	if len(rows) == 0 {
		return rpcerr.New(vtrpcpb.Code_NOT_FOUND, "no vdiff found for UUID %s keyspace %s and workflow %s on tablet %s",
			uuid, req.Keyspace, req.Workflow, e.alias())
	}
	return e.summary(ctx, c, rows[0].int64("id"), uuid, resp)
}

func (e *Engine) summary(ctx context.Context, c *conn, id int64, uuid string, resp *tabletmanagerdatapb.VDiffResponse) error {
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlVDiffSummary, id))
	if err != nil {
		return err
	}
	resp.VdiffUuid, resp.Output = uuid, qr
	return nil
}

// stopAction stops a running diff and marks it stopped (a completed diff stays completed).
func (e *Engine) stopAction(ctx context.Context, c *conn, req *tabletmanagerdatapb.VDiffRequest) error {
	uuid, ok := parseUUID(req.VdiffUuid)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "invalid vdiff UUID %q", req.VdiffUuid)
	}
	id, err := e.stopUUID(ctx, c, uuid)
	if err != nil {
		return err
	}
	qr, err := c.exec(ctx, sqlf(e.sc(), sqlVDiffStopped, id))
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "encountered an error marking vdiff %s as stopped", uuid)
	}
	if qr.RowsAffected > 0 {
		insertLog(ctx, c, e.sc(), id, "State changed to: stopped (by user request)")
	}
	return nil
}

// deleteAction stops and deletes one diff (a UUID) or every diff of the workflow (all),
// with their table and log rows.
func (e *Engine) deleteAction(ctx context.Context, c *conn, req *tabletmanagerdatapb.VDiffRequest) error {
	arg := strings.ToLower(strings.TrimSpace(req.ActionArg))
	if arg == ArgAll {
		qr, err := c.exec(ctx, sqlf(e.sc(), sqlGetVDiffIDs, quoteString(req.Keyspace), quoteString(req.Workflow)))
		if err != nil {
			return err
		}
		e.mu.Lock()
		for _, r := range namedRows(qr) {
			e.stopLocked(r.int64("id"))
		}
		e.mu.Unlock()
		_, err = c.exec(ctx, sqlf(e.sc(), sqlDeleteVDiffs, quoteString(req.Keyspace), quoteString(req.Workflow)))
		return err
	}
	uuid, ok := parseUUID(arg)
	if !ok {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "action argument %s not supported", req.ActionArg)
	}
	if _, err := e.stopUUID(ctx, c, uuid); err != nil {
		return err
	}
	_, err := c.exec(ctx, sqlf(e.sc(), sqlDeleteVDiffUUID, quoteString(uuid)))
	return err
}

// stopUUID finds the diff uuid names (NOT_FOUND when there is none) and stops its
// controller, if one runs.
func (e *Engine) stopUUID(ctx context.Context, c *conn, uuid string) (int64, error) {
	id, found, err := e.vdiffID(ctx, c, uuid)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, rpcerr.New(vtrpcpb.Code_NOT_FOUND, "no vdiff found for UUID %s on tablet %s", uuid, e.alias())
	}
	e.mu.Lock()
	e.stopLocked(id)
	e.mu.Unlock()
	return id, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
