package vdiff

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/tabletserver"
	"github.com/tabletd/tabletd/vreplication/engine"
)

// batch is a packet of rows split into column values (one allocation per packet, not per
// row), with the WEIGHT_STRINGs of the weighted key columns.
type batch struct {
	ncols, nrows int
	vals         [][]byte
	nulls        []bool
	nw           int
	w            [][]byte
}

// row is one row of a batch; the zero row is "no more rows".
type row struct {
	b *batch
	i int
}

func (r row) ok() bool { return r.b != nil }

func (r row) col(c int) ([]byte, bool) {
	k := r.i*r.b.ncols + c
	return r.b.vals[k], r.b.nulls[k]
}

func (r row) weight(j int) []byte { return r.b.w[r.i*r.b.nw+j] }

// decodeBatch splits rows of ncols values. With copyValues the values are copied first (the
// target's rows alias the connection's buffer).
func decodeBatch(rows []*querypb.Row, ncols int, copyValues bool) (*batch, error) {
	b := &batch{ncols: ncols, nrows: len(rows), vals: make([][]byte, len(rows)*ncols), nulls: make([]bool, len(rows)*ncols)}
	var buf []byte
	if copyValues {
		total := 0
		for _, r := range rows {
			total += len(r.Values)
		}
		buf = make([]byte, 0, total)
	}
	for i, r := range rows {
		if len(r.Lengths) != ncols {
			return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "a row has %d values, the fields say %d", len(r.Lengths), ncols)
		}
		values := r.Values
		if copyValues {
			start := len(buf)
			buf = append(buf, r.Values...)
			values = buf[start:len(buf):len(buf)]
		}
		off := int64(0)
		for c, l := range r.Lengths {
			k := i*ncols + c
			if l < 0 {
				b.nulls[k] = true
				continue
			}
			if off+l > int64(len(values)) {
				return nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "a row's values are shorter than its lengths")
			}
			b.vals[k] = values[off : off+l : off+l]
			off += l
		}
	}
	return b, nil
}

// weigher computes the WEIGHT_STRINGs of a plan's weighted key columns with the target's
// collations, on its own connection.
type weigher struct {
	p *tablePlan
	c *conn
}

// maxWeightExprs bounds the expressions of one weight query.
const maxWeightExprs = 256

func (w *weigher) weigh(ctx context.Context, b *batch) error {
	if w == nil || len(w.p.weighted) == 0 || b.nrows == 0 {
		return nil
	}
	b.nw = len(w.p.weighted)
	b.w = make([][]byte, b.nrows*b.nw)
	var exprs []string
	var slots []int
	flush := func() error {
		if len(exprs) == 0 {
			return nil
		}
		qr, err := w.c.exec(ctx, "select "+strings.Join(exprs, ", "))
		if err != nil {
			return err
		}
		if len(qr.Rows) != 1 {
			return rpcerr.New(vtrpcpb.Code_INTERNAL, "weight query gave %d rows", len(qr.Rows))
		}
		vals, _, err := splitRow(qr.Rows[0], len(exprs))
		if err != nil {
			return err
		}
		for i, s := range slots {
			b.w[s] = vals[i]
		}
		exprs, slots = exprs[:0], slots[:0]
		return nil
	}
	for i := 0; i < b.nrows; i++ {
		for j, kpos := range w.p.weighted {
			v, null := row{b, i}.col(w.p.key[kpos])
			if null {
				continue
			}
			exprs = append(exprs, fmt.Sprintf(w.p.weightSQL[j], "X'"+hex.EncodeToString(v)+"'"))
			slots = append(slots, i*b.nw+j)
			if len(exprs) == maxWeightExprs {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// splitRow returns a row's values (NULL: nil, true).
func splitRow(r *querypb.Row, n int) ([][]byte, []bool, error) {
	if len(r.Lengths) != n {
		return nil, nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "a row has %d values, want %d", len(r.Lengths), n)
	}
	vals, nulls := make([][]byte, n), make([]bool, n)
	off := int64(0)
	for i, l := range r.Lengths {
		if l < 0 {
			nulls[i] = true
			continue
		}
		vals[i] = r.Values[off : off+l]
		off += l
	}
	return vals, nulls, nil
}

// reader hands out the rows one side streams, in order, from a goroutine that fills a
// small queue of batches (the stream is read while the rows are compared).
type reader struct {
	ch   chan *batch
	done chan struct{} // closed when the stream's goroutine returned
	err  error         // the stream's end; read after done
	cur  *batch
	i    int
}

const queuedBatches = 4

func newReader() *reader {
	return &reader{ch: make(chan *batch, queuedBatches), done: make(chan struct{})}
}

// next returns the next row, the zero row at the end of the stream, or the stream's error.
func (rd *reader) next(ctx context.Context) (row, error) {
	for rd.cur == nil || rd.i >= rd.cur.nrows {
		select {
		case b, ok := <-rd.ch:
			if !ok {
				<-rd.done
				return row{}, rd.err
			}
			rd.cur, rd.i = b, 0
		case <-ctx.Done():
			return row{}, ctx.Err()
		}
	}
	r := row{rd.cur, rd.i}
	rd.i++
	return r, nil
}

// push queues a batch, or gives up when ctx ends.
func (rd *reader) push(ctx context.Context, b *batch) error {
	select {
	case rd.ch <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sourceStream is one source shard's VStreamRows: its first response (fields, key fields,
// the snapshot's position), then its rows once the plan is known.
type sourceStream struct {
	shard  string
	first  chan *binlogdatapb.VStreamRowsResponse // the first response, once
	plan   chan *tablePlan                        // the plan, once, before any row is decoded
	rd     *reader
	fields []*querypb.Field
}

// startSource opens VStreamRows on src and runs it until ctx ends; weigh computes the
// weights of its rows.
func startSource(ctx context.Context, src engine.Source, shard, query string, lastpk *querypb.QueryResult, weigh func(p *tablePlan) *weigher) *sourceStream {
	s := &sourceStream{shard: shard, first: make(chan *binlogdatapb.VStreamRowsResponse, 1), plan: make(chan *tablePlan, 1), rd: newReader()}
	go func() {
		defer close(s.rd.done)
		defer close(s.rd.ch)
		defer src.Close()
		var w *weigher
		started := false
		s.rd.err = src.VStreamRows(ctx, query, lastpk, func(r *binlogdatapb.VStreamRowsResponse) error {
			if !started {
				if len(r.Fields) == 0 {
					return rpcerr.New(vtrpcpb.Code_INTERNAL, "source shard %s: the first VStreamRows response has no fields", shard)
				}
				started, s.fields = true, r.Fields
				s.first <- r
				select {
				case p := <-s.plan:
					w = weigh(p)
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if len(r.Rows) == 0 {
				return nil // the fields message, or a heartbeat
			}
			b, err := decodeBatch(r.Rows, len(s.fields), false)
			if err != nil {
				return err
			}
			if err := w.weigh(ctx, b); err != nil {
				return err
			}
			return s.rd.push(ctx, b)
		})
		if w != nil {
			w.c.close()
		}
		if s.rd.err != nil && ctx.Err() == nil {
			s.rd.err = rpcerr.Wrap(rpcerr.Code(s.rd.err), s.rd.err, "VStreamRows on source shard %s", shard)
		}
	}()
	return s
}

// targetStream reads the target's rows from its snapshot (opened after the streams reached
// the sources' positions) and closes the snapshot at the end.
type targetStream struct {
	rd     *reader
	fields chan []*querypb.Field // the result's fields, once
}

func startTarget(ctx context.Context, sn *tabletserver.Snapshot, query string, packet int, w *weigher) *targetStream {
	t := &targetStream{rd: newReader(), fields: make(chan []*querypb.Field, 1)}
	go func() {
		defer close(t.rd.done)
		defer close(t.rd.ch)
		defer sn.Close()
		if w != nil {
			defer w.c.close()
		}
		ncols := -1
		t.rd.err = sn.Stream(ctx, query, packet, func(qr *querypb.QueryResult) error {
			if ncols < 0 {
				ncols = len(qr.Fields)
				t.fields <- qr.Fields
			}
			if len(qr.Rows) == 0 {
				return nil
			}
			b, err := decodeBatch(qr.Rows, ncols, true)
			if err != nil {
				return err
			}
			if err := w.weigh(ctx, b); err != nil {
				return err
			}
			return t.rd.push(ctx, b)
		})
		if t.rd.err != nil && ctx.Err() == nil {
			t.rd.err = rpcerr.Wrap(rpcerr.Code(t.rd.err), t.rd.err, "reading the target's rows")
		}
	}()
	return t
}

// merger merges the sources' ordered streams into one (a Reshard merge has several).
type merger struct {
	p     *tablePlan
	srcs  []*reader
	heads []row
	init  bool
}

func (m *merger) next(ctx context.Context) (row, error) {
	if !m.init {
		m.heads = make([]row, len(m.srcs))
		for i, rd := range m.srcs {
			r, err := rd.next(ctx)
			if err != nil {
				return row{}, err
			}
			m.heads[i] = r
		}
		m.init = true
	}
	best := -1
	for i, h := range m.heads {
		if h.ok() && (best < 0 || m.p.compareKeys(h, m.heads[best]) < 0) {
			best = i
		}
	}
	if best < 0 {
		return row{}, nil
	}
	out := m.heads[best]
	r, err := m.srcs[best].next(ctx)
	if err != nil {
		return row{}, err
	}
	m.heads[best] = r
	return out, nil
}

// compareKeys orders two rows by the merge key as MySQL orders them on the target.
func (p *tablePlan) compareKeys(a, b row) int {
	wi := 0
	for j, col := range p.key {
		k := p.keyKinds[j]
		av, an := a.col(col)
		bv, bn := b.col(col)
		switch {
		case an && bn:
			if k == cmpWeight {
				wi++
			}
			continue
		case an:
			return -1
		case bn:
			return 1
		}
		var c int
		if k == cmpWeight {
			c = compareBytesFallback(a.weight(wi), b.weight(wi), av, bv)
			wi++
		} else {
			c = compareKeyValue(k, av, bv, p.members(col))
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// compareBytesFallback compares weights, or the values themselves when a weight is missing.
func compareBytesFallback(wa, wb, a, b []byte) int {
	if wa == nil || wb == nil {
		return compareKeyValue(cmpBytes, a, b, nil)
	}
	return compareKeyValue(cmpBytes, wa, wb, nil)
}

// members are an ENUM or SET column's members (nil for other columns).
func (p *tablePlan) members(col int) []string { return p.memberList[col] }
