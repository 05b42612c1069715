package engine

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/binlogdatapb"
	"github.com/tabletd/tabletd/proto/querypb"
)

// Journals: when vtctld switches writes it inserts a _vt.resharding_journal row on each old
// source primary; a stream reading from such a source receives it as a JOURNAL event and
// stops there. Once every stream of the workflow reading from the journal's participants has
// stopped at it, they are replaced by streams reading from the journal's new shards at the
// positions the journal names (vttablet's registerJournal / transitionJournal).

// journalEvent gathers the streams that reached one journal.
type journalEvent struct {
	journal      *binlogdatapb.Journal
	workflow     string
	participants map[string]int32 // keyspace:shard → stream id (0: not yet arrived)
	shardGTIDs   map[string]*binlogdatapb.ShardGtid
}

// journalState is the engine's journal bookkeeping. Controllers use it, so it has its own
// mutex: they must never take the engine's.
type journalState struct {
	mu      sync.Mutex
	closing bool
	sources map[int32]streamSource // every started stream's workflow and source
	pending map[string]*journalEvent
}

type streamSource struct{ workflow, keyspace, shard string }

func (js *journalState) setSource(id int32, s streamSource) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.sources == nil {
		js.sources = map[int32]streamSource{}
	}
	js.sources[id] = s
}

func (js *journalState) dropSource(id int32) {
	js.mu.Lock()
	defer js.mu.Unlock()
	delete(js.sources, id)
}

// registerJournal records that stream id (of workflow, reading keyspace/shard) reached j.
// When the last participant arrives, the transition runs in the background.
func (e *Engine) registerJournal(j *binlogdatapb.Journal, id int32, src streamSource) error {
	js := &e.js
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.closing {
		return nil
	}
	key := fmt.Sprintf("%s:%d", src.workflow, j.Id)
	je := js.pending[key]
	if je == nil {
		je = &journalEvent{journal: j, workflow: src.workflow, participants: map[string]int32{}, shardGTIDs: map[string]*binlogdatapb.ShardGtid{}}
		if js.pending == nil {
			js.pending = map[string]*journalEvent{}
		}
		js.pending[key] = je
	}
	have := map[string]bool{}
	for _, s := range js.sources {
		if s.workflow == src.workflow {
			have[s.keyspace+":"+s.shard] = true
		}
	}
	for _, p := range j.Participants {
		ks := p.Keyspace + ":" + p.Shard
		if !have[ks] {
			delete(js.pending, key)
			return fmt.Errorf("cannot redirect on journal: not all sources are present in this workflow: missing %v", ks)
		}
		if _, ok := je.participants[ks]; !ok {
			je.participants[ks] = 0
		}
	}
	for _, g := range j.ShardGtids {
		je.shardGTIDs[g.Shard] = g
	}
	je.participants[src.keyspace+":"+src.shard] = id
	for _, pid := range je.participants {
		if pid == 0 {
			return nil // others still to come
		}
	}
	delete(js.pending, key)
	e.wg.Add(1)
	go e.transitionJournal(je)
	return nil
}

// transitionJournal replaces the participants' streams by streams from the journal's shards.
func (e *Engine) transitionJournal(je *journalEvent) {
	defer e.wg.Done()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.open {
		return
	}
	log := e.log.With(zap.String("workflow", je.workflow), zap.Int64("journal", je.journal.Id))
	ids := make([]int32, 0, len(je.participants))
	for _, id := range je.participants {
		ids = append(ids, id)
		e.stopLocked(id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	ctx := e.ctx
	c := newConn(e.cfg.Filtered)
	defer c.close()
	ref, err := e.readSettings(ctx, c, ids[0])
	if err != nil {
		log.Error("journal transition: cannot read the stream", zap.Error(err))
		return
	}
	shards := make([]string, 0, len(je.shardGTIDs))
	for s := range je.shardGTIDs {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	if err := c.begin(ctx); err != nil {
		log.Error("journal transition", zap.Error(err))
		return
	}
	var created []int32
	for _, shard := range shards {
		g := je.shardGTIDs[shard]
		bls := proto.Clone(ref.Source).(*binlogdatapb.BinlogSource)
		bls.Keyspace, bls.Shard = g.Keyspace, g.Shard
		q, err := insertStreamSQL(e.sidecarID(), ref, bls, g.Gtid, stateRunning)
		if err == nil {
			var qr *querypb.QueryResult
			qr, err = c.exec(ctx, q)
			if err == nil {
				created = append(created, int32(qr.InsertId))
			}
		}
		if err != nil {
			c.rollback()
			log.Error("journal transition: cannot create the new stream", zap.Error(err))
			return
		}
	}
	if _, err := c.exec(ctx, fmt.Sprintf("delete from %s.vreplication where id in (%s)", e.sidecarID(), idList(ids))); err != nil {
		c.rollback()
		log.Error("journal transition: cannot delete the old streams", zap.Error(err))
		return
	}
	if err := c.commit(ctx); err != nil {
		log.Error("journal transition", zap.Error(err))
		return
	}
	for _, id := range ids {
		delete(e.stats, id)
		e.js.dropSource(id)
	}
	for _, id := range created {
		if s, err := e.readSettings(ctx, c, id); err == nil {
			e.startLocked(s)
		}
	}
	log.Info("journal transition done", zap.Any("old", ids), zap.Any("new", created))
}

// insertStreamSQL is the insert of a stream like ref with another source and position.
func insertStreamSQL(sc string, ref *settings, bls *binlogdatapb.BinlogSource, pos, state string) (string, error) {
	b, err := prototext.Marshal(bls)
	if err != nil {
		return "", err
	}
	src := string(b)
	options := ref.Options
	if options == "" {
		options = "{}"
	}
	return fmt.Sprintf("insert into %s.vreplication (workflow, source, pos, max_tps, max_replication_lag, cell, tablet_types, "+
		"time_updated, transaction_timestamp, state, db_name, workflow_type, workflow_sub_type, defer_secondary_keys, options) "+
		"values (%s, %s, %s, %d, %d, %s, %s, unix_timestamp(), 0, %s, %s, %d, %d, %s, %s)",
		sc, QuoteString(ref.Workflow), QuoteString(src), QuoteString(pos), ref.MaxTPS, ref.MaxLag, QuoteString(ref.Cell),
		QuoteString(ref.TabletTypes), QuoteString(state), QuoteString(ref.DBName), ref.WorkflowType, ref.SubType,
		strconv.FormatBool(ref.DeferSecondaryKeys), QuoteString(options)), nil
}

// onJournal handles a JOURNAL event (vttablet's vplayer): a journal for tables this stream
// does not copy is ignored; one covering only some of them stops the stream; otherwise the
// stream stops here and joins the transition.
func (p *player) onJournal(ctx context.Context, j *binlogdatapb.Journal) error {
	r := p.r
	if j.MigrationType == binlogdatapb.MigrationType_TABLES {
		in := map[string]bool{}
		for _, t := range j.Tables {
			in[t] = true
		}
		found, notFound := false, false
		for t := range p.plan.bySource {
			if in[t] {
				found = true
			} else {
				notFound = true
			}
		}
		switch {
		case found && notFound:
			if err := r.setState(ctx, stateStopped, "unable to handle journal event: tables were partially matched"); err != nil {
				return err
			}
			return errPlayDone
		case !found:
			return nil
		}
	}
	src := r.settings.Source
	r.log.Info("journal event", zap.Int64("id", j.Id))
	if err := r.e.registerJournal(j, r.id, streamSource{r.workflow, src.Keyspace, src.Shard}); err != nil {
		if err := r.setState(ctx, stateStopped, err.Error()); err != nil {
			return err
		}
	}
	return errPlayDone
}
