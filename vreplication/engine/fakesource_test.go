package engine

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// fakeSource is an in-memory source tablet: tables keyed by an integer first column, and a
// binlog of transactions at MariaDB positions 0-1-<seq>. VStreamRows reads a table from the
// current state (its snapshot is the current position), VStream replays the binlog after a
// position as vttablet's vstreamer sends it (BEGIN, FIELD before a table's first rows, ROW,
// GTID, COMMIT; GTID, DDL), then heartbeats while idle.
type fakeSource struct {
	mu      sync.Mutex
	seq     int64
	tables  map[string]*fakeTable
	log     []fakeTx
	changed chan struct{} // closed and replaced on every commit
	// rowsBatch is the rows per VStreamRows response.
	rowsBatch int
	// failAfterRows, when > 0, fails a VStreamRows once it sent that many rows (once).
	failAfterRows int
	rowsRequests  []string // "table lastpk" of every VStreamRows
	// vstreamErr, when set, is what VStream answers.
	vstreamErr error
	// rowsDelay slows VStreamRows down (a copy that takes a while).
	rowsDelay time.Duration
}

type fakeTable struct {
	fields []*querypb.Field
	rows   map[int64][]*string
}

type fakeTx struct {
	seq     int64
	ts      int64
	ddl     string
	journal *binlogdatapb.Journal
	table   string
	events  []*binlogdatapb.RowChange
}

func newFakeSource() *fakeSource {
	return &fakeSource{tables: map[string]*fakeTable{}, changed: make(chan struct{}), rowsBatch: 100}
}

func (f *fakeSource) pos() string { return fmt.Sprintf("MariaDB/0-1-%d", f.seq) }

// createTable adds a table: its first column is the integer key.
func (f *fakeSource) createTable(name string, fields ...*querypb.Field) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[name] = &fakeTable{fields: fields, rows: map[int64][]*string{}}
}

func strp(v any) *string {
	if v == nil {
		return nil
	}
	s := fmt.Sprint(v)
	return &s
}

func toRow(vals []*string) *querypb.Row {
	r := &querypb.Row{}
	for _, v := range vals {
		if v == nil {
			r.Lengths = append(r.Lengths, -1)
			continue
		}
		r.Lengths = append(r.Lengths, int64(len(*v)))
		r.Values = append(r.Values, *v...)
	}
	return r
}

// load sets rows without a binlog entry (what existed before any stream started).
func (f *fakeSource) load(table string, vals ...[]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	for _, v := range vals {
		row := make([]*string, len(v))
		for i := range v {
			row[i] = strp(v[i])
		}
		t.rows[int64(v[0].(int))] = row
	}
}

// write applies one transaction of changes to a table: vals nil deletes key, else upserts.
func (f *fakeSource) write(table string, changes map[int64][]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	tx := fakeTx{ts: time.Now().Unix(), table: table}
	keys := make([]int64, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		v := changes[k]
		before := t.rows[k]
		var after []*string
		if v != nil {
			after = make([]*string, len(v))
			for i := range v {
				after[i] = strp(v[i])
			}
			t.rows[k] = after
		} else {
			delete(t.rows, k)
		}
		rc := &binlogdatapb.RowChange{}
		if before != nil {
			rc.Before = toRow(before)
		}
		if after != nil {
			rc.After = toRow(after)
		}
		tx.events = append(tx.events, rc)
	}
	f.commitLocked(tx)
}

// journal writes a resharding journal (vtctld's SwitchTraffic on a source).
func (f *fakeSource) journal(j *binlogdatapb.Journal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commitLocked(fakeTx{ts: time.Now().Unix(), journal: j})
}

func (f *fakeSource) ddl(stmt string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.commitLocked(fakeTx{ts: time.Now().Unix(), ddl: stmt})
}

func (f *fakeSource) commitLocked(tx fakeTx) {
	f.seq++
	tx.seq = f.seq
	f.log = append(f.log, tx)
	close(f.changed)
	f.changed = make(chan struct{})
}

// snapshot returns a table's rows, by key.
func (f *fakeSource) snapshot(table string) map[int64][]*string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64][]*string{}
	for k, v := range f.tables[table].rows {
		out[k] = v
	}
	return out
}

var fromTable = regexp.MustCompile("(?i)from\\s+`?(\\w+)`?")

func (f *fakeSource) VStreamRows(ctx context.Context, query string, lastpk *querypb.QueryResult, send func(*binlogdatapb.VStreamRowsResponse) error) error {
	m := fromTable.FindStringSubmatch(query)
	f.mu.Lock()
	var t *fakeTable
	if m != nil {
		t = f.tables[m[1]]
	}
	if t == nil {
		f.mu.Unlock()
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "table not found in query %q", query)
	}
	after := int64(-1 << 62)
	lp := "none"
	if lastpk != nil && len(lastpk.Rows) == 1 {
		v, _ := rowValues(lastpk.Rows[0], 1)
		after, _ = strconv.ParseInt(string(v[0]), 10, 64)
		lp = string(v[0])
	}
	f.rowsRequests = append(f.rowsRequests, m[1]+" "+lp)
	var keys []int64
	for k := range t.rows {
		if k > after {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	rows := make([]*querypb.Row, len(keys))
	for i, k := range keys {
		rows[i] = toRow(t.rows[k])
	}
	gtid, batch, failAt := f.pos(), f.rowsBatch, f.failAfterRows
	f.failAfterRows = 0
	fields, delay := t.fields, f.rowsDelay
	f.mu.Unlock()
	if err := send(&binlogdatapb.VStreamRowsResponse{Fields: fields, Pkfields: fields[:1], Gtid: gtid}); err != nil {
		return err
	}
	for i := 0; i < len(rows); i += batch {
		if failAt > 0 && i >= failAt {
			return rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "injected failure after %d rows", i)
		}
		chunk := rows[i:min(i+batch, len(rows))]
		v, _ := rowValues(chunk[len(chunk)-1], 1)
		if err := send(&binlogdatapb.VStreamRowsResponse{Rows: chunk, Lastpk: toRow([]*string{strp(string(v[0]))})}); err != nil {
			return err
		}
		if delay > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
		}
	}
	return nil
}

func matches(filter *binlogdatapb.Filter, table string) bool {
	for _, r := range filter.GetRules() {
		if r.Match == table {
			return true
		}
		if strings.HasPrefix(r.Match, "/") && regexp.MustCompile(strings.Trim(r.Match, "/")).MatchString(table) {
			return true
		}
	}
	return false
}

func (f *fakeSource) VStream(ctx context.Context, pos string, filter *binlogdatapb.Filter, send func([]*binlogdatapb.VEvent) error) error {
	f.mu.Lock()
	if f.vstreamErr != nil {
		err := f.vstreamErr
		f.mu.Unlock()
		return err
	}
	f.mu.Unlock()
	if !strings.HasPrefix(pos, "MariaDB/0-1-") {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "position %q is not a MariaDB position of this source", pos)
	}
	cur, err := strconv.ParseInt(strings.TrimPrefix(pos, "MariaDB/0-1-"), 10, 64)
	if err != nil {
		return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "bad position %q", pos)
	}
	sentFields := map[string]bool{}
	for {
		f.mu.Lock()
		var txs []fakeTx
		for _, tx := range f.log {
			if tx.seq > cur {
				txs = append(txs, tx)
			}
		}
		changed := f.changed
		fields := map[string][]*querypb.Field{}
		for n, t := range f.tables {
			fields[n] = t.fields
		}
		f.mu.Unlock()
		now := time.Now()
		for _, tx := range txs {
			cur = tx.seq
			gtid := fmt.Sprintf("MariaDB/0-1-%d", tx.seq)
			var evs []*binlogdatapb.VEvent
			if tx.journal != nil {
				evs = []*binlogdatapb.VEvent{{Type: binlogdatapb.VEventType_BEGIN, Timestamp: tx.ts},
					{Type: binlogdatapb.VEventType_JOURNAL, Journal: tx.journal, Timestamp: tx.ts},
					{Type: binlogdatapb.VEventType_GTID, Gtid: gtid, Timestamp: tx.ts},
					{Type: binlogdatapb.VEventType_COMMIT, Timestamp: tx.ts, CurrentTime: now.UnixNano()}}
				if err := send(evs); err != nil {
					return err
				}
				continue
			}
			if tx.ddl != "" {
				evs = []*binlogdatapb.VEvent{{Type: binlogdatapb.VEventType_GTID, Gtid: gtid, Timestamp: tx.ts},
					{Type: binlogdatapb.VEventType_DDL, Statement: tx.ddl, Timestamp: tx.ts, CurrentTime: now.UnixNano()}}
				sentFields = map[string]bool{}
			} else {
				evs = append(evs, &binlogdatapb.VEvent{Type: binlogdatapb.VEventType_BEGIN, Timestamp: tx.ts})
				if matches(filter, tx.table) {
					if !sentFields[tx.table] {
						evs = append(evs, &binlogdatapb.VEvent{Type: binlogdatapb.VEventType_FIELD, Timestamp: tx.ts,
							FieldEvent: &binlogdatapb.FieldEvent{TableName: tx.table, Fields: fields[tx.table], EnumSetStringValues: true}})
						sentFields[tx.table] = true
					}
					evs = append(evs, &binlogdatapb.VEvent{Type: binlogdatapb.VEventType_ROW, Timestamp: tx.ts,
						RowEvent: &binlogdatapb.RowEvent{TableName: tx.table, RowChanges: tx.events}})
				}
				evs = append(evs, &binlogdatapb.VEvent{Type: binlogdatapb.VEventType_GTID, Gtid: gtid, Timestamp: tx.ts},
					&binlogdatapb.VEvent{Type: binlogdatapb.VEventType_COMMIT, Timestamp: tx.ts, CurrentTime: now.UnixNano()})
			}
			if err := send(evs); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(300 * time.Millisecond):
			now := time.Now()
			if err := send([]*binlogdatapb.VEvent{{Type: binlogdatapb.VEventType_HEARTBEAT, Timestamp: now.Unix(), CurrentTime: now.UnixNano()}}); err != nil {
				return err
			}
		}
	}
}

func (f *fakeSource) Close() error { return nil }

// fakeTablets is the topology and dialer of one fake source tablet.
type fakeTablets struct {
	src     *fakeSource
	tablet  *topodatapb.Tablet
	healthy error
}

func (ft *fakeTablets) ShardTablets(_ context.Context, cell, keyspace, shard string) ([]*topodatapb.Tablet, error) {
	if keyspace != ft.tablet.Keyspace || shard != ft.tablet.Shard || cell != ft.tablet.Alias.Cell {
		return nil, nil
	}
	return []*topodatapb.Tablet{ft.tablet}, nil
}

func (ft *fakeTablets) Dial(context.Context, *topodatapb.Tablet) (Source, error) { return ft.src, nil }

func (ft *fakeTablets) Healthy(context.Context, *topodatapb.Tablet) error { return ft.healthy }
