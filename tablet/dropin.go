package tablet

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"

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
