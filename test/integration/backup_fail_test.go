package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
)

// TestBackupFailuresNeverStrand: whatever fails — storage root gone, the backup tool
// crashing mid-stream, the tool missing, the caller cancelling — the Backup stream ends
// with a coded error naming the problem, no MANIFEST (nor any file) is left, and the replica
// stays REPLICA, serving, replicating; the failure shows on /debug/status and /metrics.
// Refusals (PRIMARY, a second backup, a restore without mysqld control) change nothing.
func TestBackupFailuresNeverStrand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	root := t.TempDir()
	tools := t.TempDir()
	link := func(name, target string) {
		t.Helper()
		_ = os.Remove(filepath.Join(tools, name))
		if err := os.Symlink(target, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	script := func(name, body string) {
		t.Helper()
		_ = os.Remove(filepath.Join(tools, name))
		if err := os.WriteFile(filepath.Join(tools, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	realTool := "/usr/bin/mariabackup"
	link("mariabackup", realTool)
	link("mbstream", "/usr/bin/mbstream")
	ms := newShardOf(t, e, 2, func(c *tablet.Config) {
		backupTweak(root, 0)(c)
		c.Backup.Engine.ToolRootPath = tools
	})
	p, r := ms[0], ms[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eventually(t, 20*time.Second, "replica replicating", func() bool { return replicatingFrom(r.root, p.db.Port) })
	healthy := func(what string) {
		t.Helper()
		eventually(t, 20*time.Second, what+": replica serving and replicating", func() bool {
			return r.typ() == topodatapb.TabletType_REPLICA && r.t.QueryService().Status().Serving && replicatingFrom(r.root, p.db.Port)
		})
		// The client may give up (its deadline) before the tablet has cleaned up.
		eventually(t, 20*time.Second, what+": nothing left in storage", func() bool { return len(manifests(t, root)) == 0 })
	}
	failures := func() float64 { return metricLabel(t, r, "tabletd_backup_failures_total", `operation="backup"`) }

	moved := root + ".away"
	for _, tc := range []struct {
		name    string
		setup   func()
		undo    func()
		ctx     func() (context.Context, context.CancelFunc)
		want    vtrpcpb.Code
		mention string
	}{
		{name: "storage root missing", setup: func() { mustRename(t, root, moved) }, undo: func() { mustRename(t, moved, root) },
			want: vtrpcpb.Code_FAILED_PRECONDITION, mention: root},
		{name: "storage root is a file", setup: func() { mustRename(t, root, moved); _ = os.WriteFile(root, nil, 0o644) },
			undo: func() { _ = os.Remove(root); mustRename(t, moved, root) }, want: vtrpcpb.Code_FAILED_PRECONDITION, mention: "not a directory"},
		{name: "tool crashes mid-stream", setup: func() {
			script("mariabackup", realTool+` "$@" & pid=$!; sleep 0.5; kill -9 $pid; wait $pid`)
		}, undo: func() { link("mariabackup", realTool) }, want: vtrpcpb.Code_INTERNAL, mention: "exit status"},
		{name: "tool missing", setup: func() { _ = os.Remove(filepath.Join(tools, "mariabackup")) },
			undo: func() { link("mariabackup", realTool) }, want: vtrpcpb.Code_FAILED_PRECONDITION, mention: "mariabackup"},
		{name: "caller cancels", setup: func() { script("mariabackup", "sleep 1; exec "+realTool+` "$@"`) },
			undo: func() { link("mariabackup", realTool) },
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 700*time.Millisecond) },
			want: vtrpcpb.Code_DEADLINE_EXCEEDED},
	} {
		before := failures()
		tc.setup()
		cctx, ccancel := ctx, context.CancelFunc(func() {})
		if tc.ctx != nil {
			cctx, ccancel = tc.ctx()
		}
		ev, err := runBackup(cctx, r.running, &tmpb.BackupRequest{})
		ccancel()
		tc.undo()
		if code(err) != tc.want || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v; want %v mentioning %q\n%s", tc.name, err, tc.want, tc.mention, ev.text())
		}
		healthy(tc.name)
		eventually(t, 10*time.Second, tc.name+": failure counted", func() bool { return failures() == before+1 })
		if st := r.t.Manager().BackupStatus(); st == nil || st.LastBackup.Err == "" {
			t.Errorf("%s: status shows no error: %+v", tc.name, st)
		}
	}
	if _, body := httpGet(t, "http://"+r.t.HTTPAddr()+"/debug/status"); !strings.Contains(body, "Last backup") {
		t.Errorf("/debug/status has no backup section")
	}

	// Refusals that change nothing.
	if _, err := runBackup(ctx, p.running, &tmpb.BackupRequest{}); code(err) != vtrpcpb.Code_FAILED_PRECONDITION || !strings.Contains(err.Error(), "allow_primary") {
		t.Errorf("Backup of the PRIMARY: %v; want FAILED_PRECONDITION naming allow_primary", err)
	}
	script("mariabackup", "sleep 2; exec "+realTool+` "$@"`)
	first := make(chan error, 1)
	go func() { _, err := runBackup(ctx, r.running, &tmpb.BackupRequest{}); first <- err }()
	eventually(t, 10*time.Second, "the first backup runs", func() bool {
		st := r.t.Manager().BackupStatus()
		return st != nil && st.Running != ""
	})
	if _, err := runBackup(ctx, r.running, &tmpb.BackupRequest{}); code(err) != vtrpcpb.Code_FAILED_PRECONDITION || !strings.Contains(err.Error(), "in progress") {
		t.Errorf("a second concurrent backup: %v; want FAILED_PRECONDITION (in progress)", err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the first backup: %v", err)
	}
	link("mariabackup", realTool)
	if _, err := runRestore(ctx, r.running, &tmpb.RestoreFromBackupRequest{}); code(err) != vtrpcpb.Code_FAILED_PRECONDITION ||
		!strings.Contains(err.Error(), "--mycnf-file") || !strings.Contains(err.Error(), "--mysqlctl-socket") {
		t.Errorf("RestoreFromBackup without mysqld control: %v; want FAILED_PRECONDITION naming --mycnf-file and --mysqlctl-socket", err)
	}
	if _, err := runRestore(ctx, p.running, &tmpb.RestoreFromBackupRequest{}); code(err) != vtrpcpb.Code_FAILED_PRECONDITION {
		t.Errorf("RestoreFromBackup on the PRIMARY: %v; want FAILED_PRECONDITION", err)
	}
	if r.typ() != topodatapb.TabletType_REPLICA || !replicatingFrom(r.root, p.db.Port) {
		t.Fatalf("after the refusals: %v, replicating %v", r.typ(), replicatingFrom(r.root, p.db.Port))
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// metricLabel reads the sample of name whose labels contain label.
func metricLabel(t *testing.T, r *member, name, label string) float64 {
	t.Helper()
	_, body := httpGet(t, "http://"+r.t.HTTPAddr()+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			f := strings.Fields(line)
			var v float64
			_, _ = fmt.Sscan(f[len(f)-1], &v)
			return v
		}
	}
	t.Fatalf("%s{%s} not in /metrics", name, label)
	return 0
}
