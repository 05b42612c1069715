package vdiff

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// errMaxDuration ends a table diff that ran past --max-diff-duration; it starts again from
// its last key with new snapshots (vttablet's ErrMaxDiffDurationExceeded).
var errMaxDuration = rpcerr.New(vtrpcpb.Code_DEADLINE_EXCEEDED, "table diff was stopped due to exceeding the max-diff-duration time")

// tableDiff compares one table. Its snapshots (one per source shard and the target's) live
// for one run of compare; a run that exceeds --max-diff-duration is followed by another from
// the last key compared.
type tableDiff struct {
	ct   *controller
	spec *tableSpec
	si   *selectInfo
	tt   *targetTable
	plan *tablePlan

	// lastSrc is the sources' lastpk (VStreamRows), lastTgt the target's key values after
	// which the next run reads; both nil for a table diff from the start.
	lastSrc *querypb.QueryResult
	lastTgt [][]byte

	sources   []*sourceStream
	target    *targetStream
	tgtFields []*querypb.Field
	cancel    context.CancelFunc // ends this run's streams
}

// stopStreams ends the run's streams and waits for their goroutines (their snapshots close).
func (td *tableDiff) stopStreams() {
	if td.cancel != nil {
		td.cancel()
		td.cancel = nil
	}
	for _, s := range td.sources {
		<-s.rd.done
	}
	if td.target != nil {
		<-td.target.rd.done
	}
	td.sources, td.target = nil, nil
}

// compare merge-compares the run's streams into dr, saving progress as it goes. It returns
// when both sides are exhausted, --limit rows were compared, ctx ends, or deadline passes
// (errMaxDuration).
func (td *tableDiff) compare(ctx context.Context, c *conn, dr *DiffReport, deadline time.Time) (err error) {
	ct := td.ct
	core, rep := ct.opts.CoreOptions, ct.opts.ReportOptions
	p := td.plan
	var srcs []*reader
	for _, s := range td.sources {
		srcs = append(srcs, s.rd)
	}
	src := &merger{p: p, srcs: srcs}
	tgt := td.target.rd
	var last row // every row with a key up to last's is accounted for on both sides
	saved := dr.ProcessedRows
	defer func() {
		// Progress is saved whatever the outcome, with a context of its own (ctx may be over).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if serr := td.saveProgress(sctx, c, dr, last); serr != nil && err == nil {
			err = serr
		}
		ct.addRows(td.spec.name, dr.ProcessedRows-saved)
	}()
	limit := core.GetMaxRows()
	if limit <= 0 {
		limit = 1<<63 - 1
	}
	maxExtra, maxSamples := core.GetMaxExtraRowsToCompare(), rep.GetMaxSampleRows()
	flagged := false
	s, err := src.next(ctx)
	if err != nil {
		return err
	}
	t, err := tgt.next(ctx)
	if err != nil {
		return err
	}
	for steps := int64(0); ; steps++ {
		if steps&255 == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !deadline.IsZero() && ct.e.now().After(deadline) {
				ct.e.countRestart(td.spec.name)
				return errMaxDuration
			}
		}
		if steps >= limit || !s.ok() && !t.ok() {
			return nil
		}
		cmp := 0
		switch {
		case !s.ok():
			cmp = 1
		case !t.ok():
			cmp = -1
		default:
			cmp = p.compareKeys(s, t)
		}
		dr.ProcessedRows++
		switch {
		case cmp < 0: // only on the source
			if dr.ExtraRowsSource < maxExtra {
				dr.ExtraRowsSourceDiffs = append(dr.ExtraRowsSourceDiffs, p.rowDiff(s, rep))
			}
			dr.ExtraRowsSource++
			last = s
			if s, err = src.next(ctx); err != nil {
				return err
			}
		case cmp > 0: // only on the target
			if dr.ExtraRowsTarget < maxExtra {
				dr.ExtraRowsTargetDiffs = append(dr.ExtraRowsTargetDiffs, p.rowDiff(t, rep))
			}
			dr.ExtraRowsTarget++
			last = t
			if t, err = tgt.next(ctx); err != nil {
				return err
			}
		default:
			if p.sameValues(s, t) {
				dr.MatchingRows++
			} else {
				if maxSamples == 0 || dr.MismatchedRows < maxSamples {
					dr.MismatchedRowsDiffs = append(dr.MismatchedRowsDiffs, &DiffMismatch{Source: p.rowDiff(s, rep), Target: p.rowDiff(t, rep)})
				}
				dr.MismatchedRows++
				if !flagged {
					flagged = true
					if _, err := c.exec(ctx, sqlf(ct.e.sc(), sqlTableMismatch, ct.id, quoteString(td.spec.name))); err != nil {
						return err
					}
				}
			}
			last = s
			if s, err = src.next(ctx); err != nil {
				return err
			}
			if t, err = tgt.next(ctx); err != nil {
				return err
			}
		}
		if dr.ProcessedRows%ct.e.cfg.ProgressRows == 0 {
			if err := td.saveProgress(ctx, c, dr, last); err != nil {
				return err
			}
			ct.addRows(td.spec.name, dr.ProcessedRows-saved)
			saved = dr.ProcessedRows
		}
	}
}

// sameValues compares the non-key columns of two rows with the same key.
func (p *tablePlan) sameValues(a, b row) bool {
	for i, k := range p.valKinds {
		av, an := a.col(i)
		bv, bn := b.col(i)
		if an != bn || !an && !valuesEqual(k, av, bv) {
			return false
		}
	}
	return true
}

// saveProgress writes rows_compared, the report and (after a row) lastpk, and remembers the
// lastpk for a restart of this table diff.
func (td *tableDiff) saveProgress(ctx context.Context, c *conn, dr *DiffReport, last row) error {
	ct := td.ct
	rpt, err := json.Marshal(dr)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "encoding the report of table %s", td.spec.name)
	}
	if !last.ok() {
		_, err := c.exec(ctx, sqlf(ct.e.sc(), sqlTableNoProgress, dr.ProcessedRows, quoteString(string(rpt)), ct.id, quoteString(td.spec.name)))
		return err
	}
	lp := td.lastPK(last)
	txt, err := prototext.Marshal(lp)
	if err != nil {
		return rpcerr.Wrap(vtrpcpb.Code_INTERNAL, err, "encoding the lastpk of table %s", td.spec.name)
	}
	if _, err := c.exec(ctx, sqlf(ct.e.sc(), sqlTableProgress, dr.ProcessedRows, quoteString(string(txt)), quoteString(string(rpt)), ct.id, quoteString(td.spec.name))); err != nil {
		return err
	}
	td.setLastPK(lp)
	return nil
}

// lastPK is the progress record of a row: its key with the target's fields, and with the
// sources' key fields when their names differ.
func (td *tableDiff) lastPK(r row) *tabletmanagerdatapb.VDiffTableLastPK {
	p := td.plan
	keyRow := &querypb.Row{}
	tf := make([]*querypb.Field, len(p.key))
	for i, k := range p.key {
		v, null := r.col(k)
		if null {
			keyRow.Lengths = append(keyRow.Lengths, -1)
		} else {
			keyRow.Lengths = append(keyRow.Lengths, int64(len(v)))
			keyRow.Values = append(keyRow.Values, v...)
		}
		if k < len(td.tgtFields) {
			f := td.tgtFields[k]
			tf[i] = &querypb.Field{Name: f.Name, Type: f.Type, Charset: f.Charset, Flags: f.Flags}
		} else {
			tf[i] = &querypb.Field{Name: p.cols[k]}
		}
	}
	lp := &tabletmanagerdatapb.VDiffTableLastPK{Target: &querypb.QueryResult{Fields: tf, Rows: []*querypb.Row{keyRow}}}
	same := len(p.srcKeyF) == len(tf)
	for i := 0; same && i < len(tf); i++ {
		same = strings.EqualFold(p.srcKeyF[i].Name, tf[i].Name)
	}
	if !same {
		sf := make([]*querypb.Field, len(p.srcKeyF))
		for i, f := range p.srcKeyF {
			sf[i] = &querypb.Field{Name: f.Name, Type: f.Type, Charset: f.Charset, Flags: f.Flags}
		}
		lp.Source = &querypb.QueryResult{Fields: sf, Rows: []*querypb.Row{keyRow}}
	}
	return lp
}

// setLastPK makes lp where the next run of this table diff starts.
func (td *tableDiff) setLastPK(lp *tabletmanagerdatapb.VDiffTableLastPK) {
	if lp == nil || lp.Target == nil || len(lp.Target.Rows) != 1 {
		td.lastSrc, td.lastTgt = nil, nil
		return
	}
	td.lastSrc = lp.Source
	if td.lastSrc == nil {
		td.lastSrc = lp.Target
	}
	vals, _, err := splitRow(lp.Target.Rows[0], len(lp.Target.Rows[0].Lengths))
	if err != nil {
		td.lastSrc, td.lastTgt = nil, nil
		return
	}
	td.lastTgt = vals
}

// parseLastPK reads vdiff_table.lastpk.
func parseLastPK(s string) (*tabletmanagerdatapb.VDiffTableLastPK, error) {
	if s == "" {
		return nil, nil
	}
	lp := &tabletmanagerdatapb.VDiffTableLastPK{}
	if err := prototext.Unmarshal([]byte(s), lp); err != nil {
		return nil, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "failed to unmarshal lastpk value %q: %v", s, err)
	}
	return lp, nil
}

// isCanceled reports an error caused by the diff being stopped or the engine closing.
func isCanceled(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}
