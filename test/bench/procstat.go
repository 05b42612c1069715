package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (`getconf CLK_TCK`): 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTimes returns the user and system CPU time consumed so far by every
// thread of process pid, from /proc/<pid>/stat (children not included).
func cpuTimes(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces:
	// the fields we want are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')' in %q", pid, b)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': field 3 (state) is f[0], so field n is f[n-3];
	// utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks, nil
}

// cpuTime is user+system CPU time of process pid.
func cpuTime(pid int) (time.Duration, error) {
	u, s, err := cpuTimes(pid)
	return u + s, err
}

// selfCPU returns this process's user+system CPU time (the load generator
// and the in-process etcd), with microsecond resolution.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes returns VmRSS of process pid from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS line", pid)
}

// cpuSample is a snapshot of the CPU counters that a measured window diffs.
type cpuSample struct {
	at      time.Time
	tablet  time.Duration // the tablet process under test (0 for direct)
	tabSys  time.Duration // of which in the kernel
	mariadb time.Duration
	self    time.Duration
	// questions is mariadbd's Questions counter: statements from clients.
	questions uint64
}

// sampleCPU snapshots the counters; tabletPID 0 means no tablet.
func sampleCPU(tabletPID int, m *mariadb) (cpuSample, error) {
	mariadbPID := m.proc.pid()
	s := cpuSample{at: time.Now(), self: selfCPU()}
	var err error
	if tabletPID != 0 {
		u, sys, err := cpuTimes(tabletPID)
		if err != nil {
			return s, fmt.Errorf("tablet process %d: %w", tabletPID, err)
		}
		s.tablet, s.tabSys = u+sys, sys
	}
	if s.mariadb, err = cpuTime(mariadbPID); err != nil {
		return s, fmt.Errorf("mariadbd process %d: %w", mariadbPID, err)
	}
	if s.questions, err = m.questions(); err != nil {
		return s, fmt.Errorf("mariadbd Questions: %w", err)
	}
	return s, nil
}

// environValue is one variable of process pid's initial environment
// (/proc/<pid>/environ, NUL-separated).
func environValue(pid int, name string) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", false
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// goGCOf states a Go process's GC target: GOGC from its environment when
// set there (it wins over anything the program sets), else fallback.
func goGCOf(pid int, fallback string) string {
	if v, ok := environValue(pid, "GOGC"); ok {
		return v + " (GOGC in its environment)"
	}
	return fallback
}

// scrapeGOGC reads go_gc_gogc_percent from a Prometheus /metrics page on
// 127.0.0.1:port (tabletd's Go collector reports the runtime's value).
func scrapeGOGC(ctx context.Context, port int) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := getLocal(ctx, port, "/metrics")
	if err != nil {
		return "", false
	}
	return metricValue(string(b), "go_gc_gogc_percent")
}

// getLocal returns the body of a 200 answer to GET http://127.0.0.1:port<path>
// (at most 64 MiB); any other status is an error naming it.
func getLocal(ctx context.Context, port int, path string) ([]byte, error) {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b[:min(len(b), 512)])))
	}
	return b, nil
}

// metricValue is the value of an unlabelled metric in Prometheus text format.
func metricValue(text, name string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}
