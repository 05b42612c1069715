package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// profiledSyscalls are the syscalls the profile pass counts one by one (the
// rest only in the total): the socket I/O of a query, the netpoller, the
// scheduler's sleeps and wake-ups, and the runtime's memory calls.
var profiledSyscalls = []string{
	"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg",
	"epoll_pwait", "epoll_wait", "epoll_ctl", "futex", "nanosleep", "sched_yield",
	"tgkill", "rt_sigreturn", "madvise", "mmap", "munmap", "getrusage",
}

// profileResult is one profiled point: a tablet at one concurrency, run
// after the measured rounds and outside their medians, with perf counting
// the tablet's syscalls and pprof sampling its CPU over the window.
type profileResult struct {
	Target      string  `json:"target"`
	Clients     int     `json:"clients"`
	Queries     uint64  `json:"queries"`
	Seconds     float64 `json:"seconds"`
	QPS         float64 `json:"qps"`
	TabletCPUus float64 `json:"tablet_cpu_us_per_query"`
	TabletSysUs float64 `json:"tablet_sys_cpu_us_per_query"`
	// Syscalls per query, by name; "total" is every syscall (raw_syscalls:sys_enter).
	Syscalls  map[string]float64 `json:"syscalls_per_query,omitempty"`
	SysErr    string             `json:"syscalls_error,omitempty"`
	PprofFile string             `json:"pprof_file,omitempty"` // CPU profile, relative to the profile directory; the heap beside it as .heap
	PprofErr  string             `json:"pprof_error,omitempty"`
}

// profileRound runs one point per tablet and concurrency with the probes on.
// perf's tracepoints and pprof's sampling cost the tablet a little CPU, which
// is why these points are kept apart from the measured ones.
func (ms *measurer) profileRound(ctx context.Context) error {
	dir := ms.cfg.profileDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for ci, n := range ms.cfg.clients {
		for _, l := range rotate(ms.alive(), ci) {
			if l.tablet == nil {
				continue
			}
			pr := profileResult{Target: l.name, Clients: n}
			probe := func(ctx context.Context, d time.Duration) func(q uint64) {
				return startProbes(ctx, l, n, d, dir, &pr)
			}
			p, err := runPointProbed(ctx, l, n, ms.cfg.rows, ms.cfg.warmup, ms.cfg.duration, ms.st.mariadb, probe)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				logf("profile %s at %d clients: %v", l.name, n, err)
				continue
			}
			pr.Queries, pr.Seconds, pr.QPS = p.Queries, p.Seconds, p.QPS
			pr.TabletCPUus, pr.TabletSysUs = p.TabletCPUus, p.TabletSysUs
			ms.rep.Profiles = append(ms.rep.Profiles, pr)
			logf("profile %4d clients, %-9s %7.0f QPS, %.0f µs/q, %.1f syscalls/q %s", n, l.name, p.QPS,
				p.TabletCPUus, pr.Syscalls["total"], pr.SysErr+pr.PprofErr)
		}
	}
	return nil
}

// startProbes starts perf and the pprof download for the window d; the
// returned func waits for both and turns perf's counts into per-query figures.
func startProbes(ctx context.Context, l *leg, n int, d time.Duration, dir string, pr *profileResult) func(q uint64) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	events := []string{"raw_syscalls:sys_enter"}
	for _, s := range profiledSyscalls {
		events = append(events, "syscalls:sys_enter_"+s)
	}
	var perfOut bytes.Buffer
	perf := exec.CommandContext(ctx, "perf", "stat", "-x", ",", "--no-big-num", "-e", strings.Join(events, ","),
		"-p", strconv.Itoa(l.pid()), "--", "sleep", strconv.Itoa(secs))
	perf.Stderr = &perfOut
	perfErr := perf.Start()
	name := fmt.Sprintf("%s-%d.pprof", l.name, n)
	pprofDone := make(chan error, 1)
	go func() {
		err := fetchProfile(ctx, l.tablet.httpPort, fmt.Sprintf("profile?seconds=%d", secs), filepath.Join(dir, name))
		if err == nil { // the heap while the clients still run
			err = fetchProfile(ctx, l.tablet.httpPort, "heap", filepath.Join(dir, strings.TrimSuffix(name, ".pprof")+".heap"))
		}
		pprofDone <- err
	}()
	return func(q uint64) {
		if perfErr == nil {
			perfErr = perf.Wait()
		}
		if perfErr != nil {
			pr.SysErr = fmt.Sprintf("perf: %v: %s", perfErr, strings.TrimSpace(perfOut.String()))
		} else if q > 0 {
			pr.Syscalls = parsePerfCounts(perfOut.String(), float64(q)*float64(secs)/d.Seconds())
		}
		if err := <-pprofDone; err != nil {
			pr.PprofErr = err.Error()
		} else {
			pr.PprofFile = name
		}
	}
}

// parsePerfCounts reads `perf stat -x ,` lines (count,unit,event,...) into
// counts per query; q is the queries in perf's window.
func parsePerfCounts(out string, q float64) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		c, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>" or a comment
		}
		ev := f[2]
		switch {
		case ev == "raw_syscalls:sys_enter":
			m["total"] = c / q
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			if c > 0 {
				m[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = c / q
			}
		}
	}
	return m
}

// fetchProfile saves one of the tablet's /debug/pprof/ profiles (net/http/pprof
// on its HTTP port; vttablet serves it too), e.g. "profile?seconds=10" or "heap".
func fetchProfile(ctx context.Context, port int, which, path string) error {
	b, err := getLocal(ctx, port, "/debug/pprof/"+which)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// profileTable prints the syscalls per query of the profile pass.
func (r *report) profileTable(w io.Writer) {
	if len(r.Profiles) == 0 {
		return
	}
	names := map[string]bool{}
	for _, p := range r.Profiles {
		for k, v := range p.Syscalls {
			if k != "total" && v >= 0.05 {
				names[k] = true
			}
		}
	}
	cols := make([]string, 0, len(names))
	for k := range names {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	fmt.Fprintf(w, "\n#### Profile pass: the tablet's syscalls per point select over gRPC (perf tracepoints; not in the medians)\n\n")
	fmt.Fprintf(w, "| clients | target | QPS | tablet CPU µs/query; kernel | syscalls/query | %s | pprof |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---:|---|---:|---:|---:|%s---|\n", strings.Repeat("---:|", len(cols)))
	for _, p := range r.Profiles {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = fmt.Sprintf("%.2f", p.Syscalls[c])
		}
		total := "—"
		if v, ok := p.Syscalls["total"]; ok {
			total = fmt.Sprintf("%.2f", v)
		}
		pf := p.PprofFile
		if pf == "" {
			pf = "— " + p.PprofErr
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %.1f; %.0f | %s | %s | %s |\n", p.Clients, p.Target, p.QPS,
			p.TabletCPUus, p.TabletSysUs, total, strings.Join(cells, " | "), pf)
	}
}
