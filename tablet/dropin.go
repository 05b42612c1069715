package tablet

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// orDefault is s, or def when s is empty (a port's own bind address, else the shared one).
func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// /debug/vars (TabletStateName, TabletType, … for Vitess's tooling) is served by
// observability.go with the rest of vttablet's variables.

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
