package vdiff

import (
	"reflect"
	"strings"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// DiffReport is one table's result as _vt.vdiff_table.report holds it: the JSON vtctldclient
// parses (vttablet's vdiff.DiffReport field names and sample keys).
type DiffReport struct {
	TableName string

	ProcessedRows   int64
	MatchingRows    int64
	MismatchedRows  int64
	ExtraRowsSource int64
	ExtraRowsTarget int64

	ExtraRowsSourceDiffs []*RowDiff      `json:"ExtraRowsSourceSample,omitempty"`
	ExtraRowsTargetDiffs []*RowDiff      `json:"ExtraRowsTargetSample,omitempty"`
	MismatchedRowsDiffs  []*DiffMismatch `json:"MismatchedRowsSample,omitempty"`
}

// DiffMismatch is a row that differs: its source and target versions.
type DiffMismatch struct {
	Source *RowDiff `json:"Source,omitempty"`
	Target *RowDiff `json:"Target,omitempty"`
}

// RowDiff is a sample row: column name → value as text (NULL is empty, as vttablet shows
// it), and with --debug-query the select that reads it.
type RowDiff struct {
	Row   map[string]string `json:"Row,omitempty"`
	Query string            `json:"Query,omitempty"`
}

const truncatedNotation = "...[TRUNCATED]"

// rowDiff builds a sample of r: the key columns always, whole; with only_pks nothing else;
// other columns cut at row_diff_column_truncate_at when that saves enough to be worth it.
func (p *tablePlan) rowDiff(r row, opts *tabletmanagerdatapb.VDiffReportOptions) *RowDiff {
	rd := &RowDiff{Row: make(map[string]string, len(p.cols))}
	isKey := make(map[int]bool, len(p.key))
	for _, k := range p.key {
		v, _ := r.col(k)
		rd.Row[p.cols[k]] = string(v)
		isKey[k] = true
	}
	if opts.GetDebugQuery() {
		rd.Query = p.debugQuery(r, opts.GetOnlyPks())
	}
	if opts.GetOnlyPks() {
		return rd
	}
	cut := int(opts.GetRowDiffColumnTruncateAt())
	for i, c := range p.cols {
		if isKey[i] {
			continue
		}
		v, _ := r.col(i)
		if cut > 0 && len(v) >= cut+len(truncatedNotation)+20 {
			rd.Row[c] = string(v[:cut]) + truncatedNotation
			continue
		}
		rd.Row[c] = string(v)
	}
	return rd
}

// debugQuery is a select of the row by its key, for the report.
func (p *tablePlan) debugQuery(r row, onlyPks bool) string {
	var b strings.Builder
	b.WriteString("select ")
	cols := p.cols
	if onlyPks {
		cols = make([]string, len(p.key))
		for i, k := range p.key {
			cols[i] = p.cols[k]
		}
	}
	b.WriteString(strings.Join(cols, ", "))
	b.WriteString(" from " + p.table + " where ")
	for i, k := range p.key {
		if i > 0 {
			b.WriteString(" AND ")
		}
		v, null := r.col(k)
		b.WriteString(p.cols[k] + "=")
		switch {
		case null:
			b.WriteString("NULL")
		case numericKind(p.targetCol[k]) != cmpBytes:
			b.Write(v)
		default:
			b.WriteString(quoteString(string(v)))
		}
	}
	b.WriteString(";")
	return b.String()
}

// reconcile settles the extra rows once a table is compared. Extra rows found on both sides
// that are identical were only ordered differently (a collation difference between source
// and target): they match. For a table compared by all its columns (no primary key on the
// source) extra rows whose primary key equivalent (pke, target column names) is the same on
// both sides are one row that differs: a mismatch. Then the samples are cut to
// maxSampleRows (0: all).
func reconcile(dr *DiffReport, pke []string, maxSampleRows int64) {
	if dr.ExtraRowsSource > 0 && dr.ExtraRowsTarget > 0 {
		src, tgt := dr.ExtraRowsSourceDiffs, dr.ExtraRowsTargetDiffs
		usedT := make([]bool, len(tgt))
		var keepS []*RowDiff
		var pairs []*DiffMismatch
		for _, s := range src {
			match, pair := -1, -1
			for j, t := range tgt {
				if usedT[j] {
					continue
				}
				if reflect.DeepEqual(s, t) {
					match = j
					break
				}
				if pair < 0 && len(pke) > 0 && sameColumns(s, t, pke) {
					pair = j
				}
			}
			switch {
			case match >= 0:
				usedT[match] = true
				dr.ExtraRowsSource--
				dr.ExtraRowsTarget--
				dr.MatchingRows++
				dr.ProcessedRows-- // one row, counted once per side
			case pair >= 0:
				usedT[pair] = true
				dr.ExtraRowsSource--
				dr.ExtraRowsTarget--
				dr.MismatchedRows++
				dr.ProcessedRows--
				pairs = append(pairs, &DiffMismatch{Source: s, Target: tgt[pair]})
			default:
				keepS = append(keepS, s)
			}
		}
		var keepT []*RowDiff
		for j, t := range tgt {
			if !usedT[j] {
				keepT = append(keepT, t)
			}
		}
		dr.ExtraRowsSourceDiffs, dr.ExtraRowsTargetDiffs = keepS, keepT
		dr.MismatchedRowsDiffs = append(dr.MismatchedRowsDiffs, pairs...)
	}
	if maxSampleRows > 0 {
		if int64(len(dr.ExtraRowsSourceDiffs)) > maxSampleRows {
			dr.ExtraRowsSourceDiffs = dr.ExtraRowsSourceDiffs[:maxSampleRows]
		}
		if int64(len(dr.ExtraRowsTargetDiffs)) > maxSampleRows {
			dr.ExtraRowsTargetDiffs = dr.ExtraRowsTargetDiffs[:maxSampleRows]
		}
		if int64(len(dr.MismatchedRowsDiffs)) > maxSampleRows {
			dr.MismatchedRowsDiffs = dr.MismatchedRowsDiffs[:maxSampleRows]
		}
	}
}

func sameColumns(a, b *RowDiff, cols []string) bool {
	for _, c := range cols {
		av, ok1 := a.Row[c]
		bv, ok2 := b.Row[c]
		if !ok1 || !ok2 || av != bv {
			return false
		}
	}
	return true
}
