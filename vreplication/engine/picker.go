package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// inOrderHint prefixes a tablet_types value whose types are a preference order, not a set
// (vttablet's discovery.InOrderHint).
const inOrderHint = "in_order:"

// tabletTypes is a parsed tablet_types column.
type tabletTypes struct {
	types   []topodatapb.TabletType
	inOrder bool
}

// parseTabletTypes reads "in_order:REPLICA,PRIMARY", "replica,primary" or "" (the default).
// Names are case-insensitive, as vttablet's topoproto.ParseTabletType.
func parseTabletTypes(s string) (tabletTypes, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultTabletTypes
	}
	var tt tabletTypes
	if rest, ok := cutPrefixFold(s, inOrderHint); ok {
		tt.inOrder, s = true, rest
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToUpper(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if name == "MASTER" {
			name = "PRIMARY"
		}
		v, ok := topodatapb.TabletType_value[name]
		if !ok {
			return tt, rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "unknown tablet type %q in tablet_types %q", name, s)
		}
		tt.types = append(tt.types, topodatapb.TabletType(v))
	}
	if len(tt.types) == 0 {
		return parseTabletTypes("")
	}
	return tt, nil
}

// String is the column form: "in_order:REPLICA,PRIMARY" or "REPLICA,PRIMARY".
func (tt tabletTypes) String() string {
	names := make([]string, len(tt.types))
	for i, t := range tt.types {
		names[i] = t.String()
	}
	s := strings.Join(names, ",")
	if tt.inOrder {
		s = inOrderHint + s
	}
	return s
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// picker chooses the source tablet of a stream, as vttablet's tablet picker: candidates are
// the shard's tablets of the wanted types in the stream's cells, the local cell first and,
// with "in_order:", types in their order; among equals the order is random. The first
// candidate whose StreamHealth says serving is chosen.
type picker struct {
	e               *Engine
	keyspace, shard string
	cells           []string
	types           tabletTypes
}

func (e *Engine) newPicker(keyspace, shard, cells, types string) (*picker, error) {
	tt, err := parseTabletTypes(types)
	if err != nil {
		return nil, err
	}
	p := &picker{e: e, keyspace: keyspace, shard: shard, types: tt}
	for _, c := range strings.Split(cells, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(p.cells, c) {
			p.cells = append(p.cells, c)
		}
	}
	if len(p.cells) == 0 {
		p.cells = []string{e.cfg.Cell}
	}
	return p, nil
}

type candidate struct {
	tablet *topodatapb.Tablet
	rank   int // lower first
	tie    int
}

// pick returns a healthy source tablet, or UNAVAILABLE naming what was tried.
func (p *picker) pick(ctx context.Context) (*topodatapb.Tablet, error) {
	var cands []candidate
	var problems []string
	for _, cell := range p.cells {
		tablets, err := p.e.deps.Topo.ShardTablets(ctx, cell, p.keyspace, p.shard)
		if err != nil {
			problems = append(problems, fmt.Sprintf("cell %s: %v", cell, err))
			continue
		}
		for _, t := range tablets {
			i := slices.Index(p.types.types, t.GetType())
			if i < 0 || t.GetHostname() == "" {
				continue
			}
			rank := 0
			if p.types.inOrder {
				rank = i
			}
			if cell != p.e.cfg.Cell {
				rank += len(p.types.types) // the local cell first
			}
			cands = append(cands, candidate{tablet: t, rank: rank, tie: rand.Int()})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].rank != cands[j].rank {
			return cands[i].rank < cands[j].rank
		}
		return cands[i].tie < cands[j].tie
	})
	for _, c := range cands {
		if err := p.e.deps.Dial.Healthy(ctx, c.tablet); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", aliasString(c.tablet.Alias), err))
			p.e.log.Debug("source tablet not eligible", zap.String("tablet", aliasString(c.tablet.Alias)), zap.Error(err))
			continue
		}
		return c.tablet, nil
	}
	msg := fmt.Sprintf("no healthy tablet of type %s for %s/%s in cells %s", p.types, p.keyspace, p.shard, strings.Join(p.cells, ","))
	if len(problems) > 0 {
		msg += " (" + strings.Join(problems, "; ") + ")"
	}
	return nil, rpcerr.New(vtrpcpb.Code_UNAVAILABLE, "%s", msg)
}
