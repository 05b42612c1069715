package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// TestMissingDatabaseIsNotServing: a PRIMARY whose database does not exist yet never claims
// to serve (every query would fail with errno 1049); the reason is in health_error and on
// /debug/status; once the database appears (as InitShardPrimary creates it) the tablet
// serves by itself. The same holds when the app user cannot log in.
func TestMissingDatabaseIsNotServing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	root := db.RootDB(t)
	r := startTablet(t, tabletConfig(e, db, tabletOpts{uid: 140, initType: topodatapb.TabletType_PRIMARY}))
	h := r.health(t)

	missing := h.until(10*time.Second, "a probed record", func(m *querypb.StreamHealthResponse) bool {
		return strings.Contains(m.RealtimeStats.HealthError, "vt_commerce")
	})
	if missing.Serving || missing.Target.TabletType != topodatapb.TabletType_PRIMARY {
		t.Fatalf("tablet without its database: serving=%v type=%v; want a PRIMARY not serving", missing.Serving, missing.Target.TabletType)
	}
	if !strings.Contains(missing.RealtimeStats.HealthError, "errno 1049") {
		t.Fatalf("health_error %q does not name errno 1049", missing.RealtimeStats.HealthError)
	}
	if code, body := httpGet(t, "http://"+r.t.HTTPAddr()+"/debug/status"); code != 200 || !strings.Contains(body, "NOT_SERVING") ||
		!strings.Contains(body, "does not exist") {
		t.Fatalf("/debug/status (%d) does not show NOT_SERVING with the reason:\n%s", code, body)
	}

	db.Exec(t, "CREATE DATABASE vt_commerce")
	h.until(10*time.Second, "serving once the database exists", func(m *querypb.StreamHealthResponse) bool {
		return m.Serving && m.RealtimeStats.HealthError == ""
	})

	// The app user loses its access: not serving again, and the record says who cannot log in.
	if _, err := root.Exec("RENAME USER 'vt_app'@'%' TO 'vt_app_gone'@'%'"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Exec("RENAME USER 'vt_app'@'localhost' TO 'vt_app_gone'@'localhost'"); err != nil {
		t.Fatal(err)
	}
	denied := h.until(10*time.Second, "not serving without the app user", func(m *querypb.StreamHealthResponse) bool {
		return !m.Serving && strings.Contains(m.RealtimeStats.HealthError, "vt_app")
	})
	if !strings.Contains(denied.RealtimeStats.HealthError, "errno 1045") {
		t.Fatalf("health_error %q does not name errno 1045", denied.RealtimeStats.HealthError)
	}
	if _, err := root.Exec("RENAME USER 'vt_app_gone'@'%' TO 'vt_app'@'%'"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Exec("RENAME USER 'vt_app_gone'@'localhost' TO 'vt_app'@'localhost'"); err != nil {
		t.Fatal(err)
	}
	h.until(10*time.Second, "serving again", func(m *querypb.StreamHealthResponse) bool { return m.Serving })
}
