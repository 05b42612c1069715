package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// preflight checks what can fail before anything starts: sysbench for the
// vtgate leg, and a clean tabletd tree (read again after the build).
func preflight(ctx context.Context, cfg config, rep *report) error {
	if cfg.vtgateLeg {
		v, err := sysbenchVersion()
		if err != nil {
			return err
		}
		rep.Meta.SysbenchVersion = v
	}
	if !wants(cfg, legTabletd) {
		return nil
	}
	if cfg.tabletdBin != "" {
		_, _, err := prebuiltVerdict(cfg.tabletdBin, cfg.allowDirty)
		return err
	}
	before, err := readTree(ctx, cfg.tabletdSrc)
	if err != nil {
		return err
	}
	_, err = sourceVerdict(before, before, cfg.allowDirty)
	return err
}

// built is the tabletd binary a run measures and the source it came from.
type built struct {
	bin, version string
	commit       string
	dirty        bool
	dirtyFiles   []string
	err          error
}

// buildChecked builds tabletd (or takes -tabletd-bin) and decides whether
// its source may be measured: the tree is read before and after the build.
func buildChecked(ctx context.Context, cfg config, e *env) built {
	if cfg.tabletdBin != "" {
		commit, dirty, err := prebuiltVerdict(cfg.tabletdBin, cfg.allowDirty)
		b := built{bin: cfg.tabletdBin, commit: commit, dirty: dirty, version: short(commit)}
		if dirty {
			b.version += "-dirty"
			b.dirtyFiles = []string{"prebuilt " + cfg.tabletdBin + ": " + fmt.Sprint(err)}
		}
		if err != nil && !cfg.allowDirty {
			b.err = fmt.Errorf("%w: %w", errRefused, err)
		}
		return b
	}
	before, err := readTree(ctx, cfg.tabletdSrc)
	if err != nil {
		return built{err: err}
	}
	logf("building tabletd from %s (%s)", cfg.tabletdSrc, short(before.Commit))
	bin, err := buildTabletd(ctx, e, cfg.tabletdSrc)
	if err != nil {
		return built{err: err}
	}
	after, err := readTree(ctx, cfg.tabletdSrc)
	if err != nil {
		return built{err: err}
	}
	b := built{bin: bin, commit: before.Commit, dirtyFiles: append(before.Dirty, after.Dirty...)}
	if b.dirty, err = sourceVerdict(before, after, cfg.allowDirty); err != nil {
		b.err = fmt.Errorf("%w: %w", errRefused, err)
		return b
	}
	if rev, _, ok := binaryVCS(bin); ok && rev != before.Commit {
		b.dirty = true
		b.dirtyFiles = append(b.dirtyFiles, "go build stamped "+short(rev))
	}
	b.version = short(b.commit)
	if b.dirty {
		b.version += "-dirty"
	}
	b.dirtyFiles = dedupe(b.dirtyFiles)
	return b
}

func dedupe(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// setup starts MariaDB, the topology, the tablets and vtgate; a tablet that
// cannot start is recorded in rep.Unavailable rather than failing the run,
// but a tabletd that cannot be given vttablet's settings (or a dirty tree)
// fails it.
func setup(ctx context.Context, cfg config, e *env, rep *report) (*runState, error) {
	buildc := make(chan built, 1)
	buildCtx, cancelBuild := context.WithCancel(ctx)
	pending := false // a build result not received yet
	defer func() {
		cancelBuild() // setup failed early: stop a running go build and wait for it
		if pending {
			<-buildc
		}
	}()
	if wants(cfg, legTabletd) {
		pending = true
		go func() { buildc <- buildChecked(buildCtx, cfg, e) }() // while MariaDB loads
	}
	streamRows := cfg.streamRows
	if !cfg.grpcLeg {
		streamRows = 0
	}
	logf("starting mariadbd and loading %d + %d rows", cfg.rows, streamRows)
	begin := time.Now()
	m, err := startMariaDB(ctx, e)
	if err != nil {
		return nil, err
	}
	rep.Meta.MariaDBVersion = m.version
	rep.Meta.DirectConnection = "unix socket " + m.socket + " (the tablets' --db-socket), user vt_app, interpolated parameters (one COM_QUERY per query)"
	if err := m.load(ctx, cfg.rows, streamRows); err != nil {
		return nil, err
	}
	logf("mariadbd %s loaded in %v", m.version, time.Since(begin).Round(time.Second))
	st := &runState{mariadb: m}
	if wants(cfg, legDirect) {
		st.legs = append(st.legs, directLeg(m))
	}
	if !wants(cfg, legTabletd) && !wants(cfg, legVttablet) {
		return st, nil
	}
	topo, err := startTopology(ctx, e, cfg.vitessBin)
	if err != nil {
		return nil, err
	}
	if wants(cfg, legTabletd) {
		b := <-buildc
		pending = false
		if err := setupTabletd(ctx, cfg, e, topo, m, b, st, rep); err != nil {
			return nil, err
		}
	}
	if wants(cfg, legVttablet) {
		if err := setupVttablet(ctx, cfg, e, topo, m, st, rep); err != nil {
			return nil, err
		}
	}
	if cfg.vtgateLeg {
		if err := setupVtgate(ctx, cfg, e, topo, st, rep); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// setupTabletd starts tabletd; only an interrupt, a dirty tree or a flag
// tabletd lacks is an error, anything else drops the leg.
func setupTabletd(ctx context.Context, cfg config, e *env, topo *topology, m *mariadb, b built, st *runState, rep *report) error {
	if b.err != nil && errors.Is(b.err, errRefused) {
		return b.err
	}
	rep.Meta.TabletdCommit, rep.Meta.TreeDirty, rep.Meta.DirtyFiles = b.commit, b.dirty, b.dirtyFiles
	var t *tablet
	err := b.err
	if err == nil {
		rep.Meta.TabletdVersion = b.version
		logf("starting tabletd")
		t, err = startTabletd(ctx, e, topo, m, b.bin, b.version, tabletdOptions{consolidate: cfg.consolidate, gogc: cfg.tabletdGOGC, pprof: cfg.profileDir != ""})
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, errRefused):
		return err
	case err != nil:
		rep.Unavailable[legTabletd] = err.Error()
		logf("tabletd leg NOT MEASURED: %v", err)
		return nil
	}
	logf("tabletd serves as PRIMARY (pid %d, http %d, GOGC %s)", t.proc.pid(), t.httpPort, t.gogc)
	rep.Meta.TabletFlags[legTabletd] = strings.Join(t.flags, " ")
	rep.Meta.TabletTypes[legTabletd] = "PRIMARY (--init-tablet-type PRIMARY --unmanaged)"
	rep.Meta.GOGC[legTabletd] = t.gogc
	st.legs = append(st.legs, tabletLeg(legTabletd, t))
	return nil
}

// setupVttablet starts vttablet and makes it PRIMARY; a failure drops the leg.
func setupVttablet(ctx context.Context, cfg config, e *env, topo *topology, m *mariadb, st *runState, rep *report) error {
	logf("starting vttablet")
	t, err := startVttablet(ctx, e, topo, m, cfg.vitessBin, cfg.consolidate)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		rep.Unavailable[legVttablet] = err.Error()
		logf("vttablet leg NOT MEASURED: %v", err)
		return nil
	}
	rep.Meta.VttabletVersion = t.version
	logf("vttablet serves as PRIMARY (pid %d, http %d, GOGC %s)", t.proc.pid(), t.httpPort, t.gogc)
	rep.Meta.TabletFlags[legVttablet] = strings.Join(t.flags, " ")
	rep.Meta.TabletTypes[legVttablet] = "PRIMARY (started --init-tablet-type REPLICA --unmanaged, which v23 requires; then vtctldclient TabletExternallyReparented)"
	rep.Meta.GOGC[legVttablet] = t.gogc
	st.legs = append(st.legs, tabletLeg(legVttablet, t))
	return nil
}

// setupVtgate starts vtgate in front of the tablets that serve; without
// one, the vtgate leg is recorded as not measured.
func setupVtgate(ctx context.Context, cfg config, e *env, topo *topology, st *runState, rep *report) error {
	var keyspaces []string
	for _, l := range st.legs {
		if l.tablet != nil {
			keyspaces = append(keyspaces, l.tablet.client.target.Keyspace)
		}
	}
	if len(keyspaces) == 0 {
		st.gateLegs = gateLegs(st, nil, st.mariadb)
		return nil
	}
	logf("starting vtgate in front of keyspaces %s", strings.Join(keyspaces, ", "))
	g, err := startVtgate(ctx, e, topo, cfg.vitessBin, keyspaces)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		rep.Unavailable["vtgate"] = err.Error()
		logf("vtgate leg NOT MEASURED: %v", err)
		st.gateLegs = gateLegs(st, nil, st.mariadb)
		return nil
	}
	logf("vtgate serves (pid %d, mysql port %d, GOGC %s)", g.proc.pid(), g.mysqlPort, g.gogc)
	rep.Meta.VtgateVersion, rep.Meta.VtgateFlags = g.version, strings.Join(g.flags, " ")
	rep.Meta.GOGC["vtgate"] = g.gogc
	st.gate = g
	st.gateLegs = gateLegs(st, g, st.mariadb)
	return nil
}
