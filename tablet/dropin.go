package tablet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/topo"
)

// orDefault is s, or def when s is empty (a port's own bind address, else the shared one).
func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// serveVars answers /debug/vars with the expvar names Vitess's tooling reads from a vttablet:
// the end-to-end test cluster waits for TabletStateName to be SERVING or NOT_SERVING before
// it uses a tablet, and reads TabletType. The values follow vttablet's: TabletStateName is
// SERVING only while the tablet serves; TabletState is 0 (not connected), 1 (not serving)
// or 2 (serving); TabletType is the lower-case type name.
func (t *Tablet) serveVars(w http.ResponseWriter, _ *http.Request) {
	st := t.qs.Status()
	rec := t.tm.Tablet()
	name, state := "NOT_SERVING", 1
	switch {
	case st.Serving:
		name, state = "SERVING", 2
	case st.MySQL.CheckedAt.IsZero() || st.MySQL.Err != nil:
		state = 0
	}
	vars := map[string]any{
		"TabletStateName": name,
		"TabletState":     state,
		"TabletType":      strings.ToLower(rec.Type.String()),
		"TabletKeyspace":  t.cfg.Keyspace,
		"TabletShard":     t.cfg.Shard,
		"TabletAlias":     topo.AliasString(t.cfg.Alias),
		"BuildVersion":    t.cfg.BuildVersion,
		"cmdline":         os.Args,
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(vars)
}

// ensureDatabaseAndSidecar is the tablet manager's EnsureSidecar hook with vttablet's
// convention in front: a tablet becoming the primary (PlannedReparentShard's initial case on a
// fresh shard, InitPrimary, TabletExternallyReparented) creates its database when it is
// missing, as vttablet's schema engine does when a primary starts serving — with binary
// logging, so the replicas receive it. Only a missing database is created: an existing one
// costs no statement (and no GTID). A tablet started with --init-tablet-type PRIMARY (which
// vttablet refuses) keeps tabletd's rule instead: it serves once the database exists.
func (t *Tablet) ensureDatabaseAndSidecar(ctx context.Context, sidecarDB string, local bool) error {
	if !local && t.cfg.InitType != topodatapb.TabletType_PRIMARY {
		name := t.cfg.dbName()
		var n int
		if err := t.mysql.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
			return fmt.Errorf("looking for database %s: %w", name, err)
		}
		if n == 0 {
			if _, err := t.mysql.db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`"); err != nil {
				return fmt.Errorf("creating database %s: %w", name, err)
			}
			t.log.Info("created the tablet's database, as a new primary", zap.String("database", name))
		}
	}
	return t.mysql.ensureSidecar(ctx, sidecarDB, local)
}
