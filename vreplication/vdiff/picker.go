package vdiff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
	"github.com/tabletd/tabletd/topo"
)

// defaultTabletTypes is vtctldclient VDiff's default --tablet-types, in preference order.
const defaultTabletTypes = "in_order:RDONLY,REPLICA,PRIMARY"

// parseTabletTypes reads "in_order:rdonly,replica,primary" (vttablet's tablet picker hint) or
// a plain list; an empty value is the default.
func parseTabletTypes(s string) ([]topodatapb.TabletType, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = defaultTabletTypes
	}
	inOrder := false
	if len(s) >= 9 && strings.EqualFold(s[:9], "in_order:") {
		inOrder, s = true, s[9:]
	}
	var out []topodatapb.TabletType
	for _, n := range strings.Split(s, ",") {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if n == "MASTER" {
			n = "PRIMARY"
		}
		v, ok := topodatapb.TabletType_value[n]
		if !ok {
			return nil, false, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "unknown tablet type %q in --tablet-types %q", n, s)
		}
		out = append(out, topodatapb.TabletType(v))
	}
	if len(out) == 0 {
		return parseTabletTypes("")
	}
	return out, inOrder, nil
}

// pick chooses a healthy tablet of keyspace/shard among cells (comma-separated; the local
// cell first) of the wanted types (in their order with in_order:), as vttablet's tablet
// picker does for streaming; among equal candidates the choice is random.
func (e *Engine) pick(ctx context.Context, cellList, types, keyspace, shard string) (*topodatapb.Tablet, error) {
	tt, inOrder, err := parseTabletTypes(types)
	if err != nil {
		return nil, err
	}
	cells := []string{}
	for _, c := range strings.Split(cellList, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(cells, c) {
			cells = append(cells, c)
		}
	}
	if len(cells) == 0 {
		cells = []string{e.cfg.Cell}
	}
	type cand struct {
		t         *topodatapb.Tablet
		rank, tie int
	}
	var cands []cand
	var problems []string
	for _, cell := range cells {
		tctx, cancel := context.WithTimeout(ctx, e.cfg.TopoTimeout)
		tablets, err := e.deps.Topo.ShardTablets(tctx, cell, keyspace, shard)
		cancel()
		if err != nil {
			problems = append(problems, fmt.Sprintf("cell %s: %v", cell, err))
			continue
		}
		for _, t := range tablets {
			i := slices.Index(tt, t.GetType())
			if i < 0 || t.GetHostname() == "" {
				continue
			}
			rank := 0
			if inOrder {
				rank = i
			}
			if cell != e.cfg.Cell {
				rank += len(tt)
			}
			cands = append(cands, cand{t: t, rank: rank, tie: rand.Int()})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].rank != cands[j].rank {
			return cands[i].rank < cands[j].rank
		}
		return cands[i].tie < cands[j].tie
	})
	for _, c := range cands {
		if err := e.deps.Dial.Healthy(ctx, c.t); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", topo.AliasString(c.t.Alias), err))
			continue
		}
		return c.t, nil
	}
	msg := fmt.Sprintf("no healthy tablet of type %s for %s/%s in cells %s", types, keyspace, shard, strings.Join(cells, ","))
	if len(problems) > 0 {
		msg += " (" + strings.Join(problems, "; ") + ")"
	}
	return nil, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "%s", msg)
}
