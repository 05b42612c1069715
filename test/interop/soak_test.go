//go:build interop && soak

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

var (
	soakDuration = flag.Duration("soak-duration", 10*time.Minute, "how long TestSoak runs sysbench")
	soakKills    = flag.Int("soak-kills", 5, "how many times TestSoak kills and restarts mysqld")
	soakOut      = flag.String("soak-out", "", "write TestSoak's figures here as JSON")
)

// soakSample is one reading of tabletd's process.
type soakSample struct {
	At         time.Duration `json:"at_seconds"`
	RSSKiB     int64         `json:"rss_kib"`
	Goroutines int64         `json:"goroutines"`
}

// soakReport is what TestSoak measured (docs/reliability.md).
type soakReport struct {
	Duration       string       `json:"duration"`
	Kills          int          `json:"kills"`
	BackToServing  []float64    `json:"back_to_serving_seconds"` // mysqld ready → vtgate shows PRIMARY SERVING
	HealthInterval float64      `json:"health_interval_seconds"`
	AckedWrites    int          `json:"acked_writes"`
	LostWrites     int          `json:"lost_writes"`
	FailedWrites   int          `json:"failed_writes"` // not acknowledged: not checked
	SysbenchRuns   int          `json:"sysbench_runs"`
	SysbenchKilled int          `json:"sysbench_runs_killed"` // overran their --time; counted from interval reports
	SysbenchTx     int64        `json:"sysbench_transactions"`
	SysbenchErrors int64        `json:"sysbench_ignored_errors"`
	Samples        []soakSample `json:"samples"`
	RSSDrift       float64      `json:"rss_drift_minute2_to_end"`
	GoroutineDrift float64      `json:"goroutine_drift_minute2_to_end"`
}

// TestSoak runs sysbench oltp_read_write through a real vtgate to tabletd while mysqld is
// SIGKILLed and restarted, with a writer beside it whose every acknowledged insert is
// checked in MariaDB afterwards: no acknowledged write lost, back to SERVING within two
// health intervals after each restart, tabletd's RSS and goroutines flat. `make soak`.
func TestSoak(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make soak installs it (apt-get install sysbench)")
	}
	c := newCluster(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	tab := c.startTabletd(db, "PRIMARY")
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	// vtgate lists the tablet before it has loaded the keyspace's (empty) vschema; until then
	// it answers "unknown database 'commerce'".
	var cerr error
	eventually(t, 30*time.Second, "vtgate knows keyspace commerce", func() bool {
		cerr = c.vtgateExec("create table if not exists acks (id bigint primary key, at datetime(6))")
		return cerr == nil
	})
	common := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1",
		"--mysql-port=" + fmt.Sprint(c.vtgateMySQLPort), "--mysql-user=user", "--mysql-db=commerce",
		"--db-ps-mode=disable", "--tables=4", "--table-size=10000", "--mysql-ignore-errors=all"}
	if out, err := exec.Command("sysbench", append(common, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	rep := soakReport{Duration: soakDuration.String(), Kills: *soakKills, HealthInterval: healthInterval.Seconds()}
	start := time.Now()
	end := start.Add(*soakDuration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	var wg sync.WaitGroup

	// sysbench in pieces of at most a minute, each killed 30 s after its --time if it has
	// not ended (a connection a mysqld kill broke can hang it): a hung piece costs half a
	// minute of load, not the rest of the soak. Each piece reports every 10 s; its load is
	// its summary when it printed one, else the sum of its interval reports.
	var sbMu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			left := time.Until(end).Round(time.Second)
			if left < 5*time.Second {
				return
			}
			piece := min(left-2*time.Second, time.Minute)
			rctx, rcancel := context.WithTimeout(context.Background(), piece+30*time.Second)
			// stdbuf: sysbench's stdout is a pipe here; line buffering keeps the interval
			// reports of a piece that has to be killed.
			args := append([]string{"-oL", "sysbench"}, common...)
			args = append(args, "--threads=8", fmt.Sprintf("--time=%d", int(piece.Seconds())), "--report-interval=10", "run")
			out, _ := exec.CommandContext(rctx, "stdbuf", args...).CombinedOutput()
			rcancel()
			tx, errs, complete := sysbenchLoad(out)
			t.Logf("sysbench piece ending at %v (complete %v): %d transactions, %d ignored errors; reports:\n%s",
				time.Since(start).Round(time.Second), complete, tx, errs, intervalLines(out))
			sbMu.Lock()
			rep.SysbenchRuns++
			if !complete {
				rep.SysbenchKilled++
			}
			rep.SysbenchTx += tx
			rep.SysbenchErrors += errs
			sbMu.Unlock()
		}
	}()

	// The acknowledged-writes checker: one insert at a time through vtgate, autocommit.
	var acked []int64
	var failed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := int64(1); ctx.Err() == nil; id++ {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.vtgateDB.ExecContext(cctx, "insert into commerce.acks (id, at) values (?, now(6))", id)
			ccancel()
			if err == nil {
				acked = append(acked, id)
			} else {
				failed++
			}
		}
	}()

	// Samples of tabletd's RSS and goroutines every 10s.
	httpBase := fmt.Sprintf("http://127.0.0.1:%d", tab.httpPort)
	var samples []soakSample
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				samples = append(samples, soakSample{At: time.Since(start), RSSKiB: rssKiB(tab.cmd.Process.Pid),
					Goroutines: metricValue(httpBase+"/metrics", "go_goroutines")})
			}
		}
	}()

	// The kills: spread over the first three quarters, the last quarter to settle.
	spacing := time.Duration(float64(*soakDuration) * 0.75 / float64(*soakKills))
	for i := 1; i <= *soakKills; i++ {
		at := start.Add(time.Duration(i) * spacing)
		select {
		case <-time.After(time.Until(at)):
		case <-ctx.Done():
			t.Fatal("the soak ended before all the kills")
		}
		db.Kill(t)
		db.Restart(t)
		ready := time.Now()
		c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
		took := time.Since(ready).Seconds()
		rep.BackToServing = append(rep.BackToServing, took)
		t.Logf("kill %d at %v: SERVING again %.2fs after mysqld was ready", i, time.Since(start).Round(time.Second), took)
	}
	wg.Wait()

	// Every acknowledged insert is in MariaDB.
	have := map[int64]bool{}
	rows, err := db.RootDB(t).Query("SELECT id FROM vt_commerce.acks")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		have[id] = true
	}
	rows.Close()
	for _, id := range acked {
		if !have[id] {
			rep.LostWrites++
		}
	}
	rep.AckedWrites, rep.FailedWrites, rep.Samples = len(acked), failed, samples
	rep.RSSDrift, rep.GoroutineDrift = drift(samples, 2*time.Minute, func(s soakSample) int64 { return s.RSSKiB }),
		drift(samples, 2*time.Minute, func(s soakSample) int64 { return s.Goroutines })
	b, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("soak report:\n%s", b)
	if *soakOut != "" {
		if err := os.WriteFile(*soakOut, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if rep.LostWrites != 0 {
		t.Errorf("%d of %d acknowledged writes are not in MariaDB", rep.LostWrites, rep.AckedWrites)
	}
	for i, s := range rep.BackToServing {
		if s > 2*healthInterval.Seconds() {
			t.Errorf("kill %d: SERVING again after %.2fs, more than two health intervals (%v)", i+1, s, 2*healthInterval)
		}
	}
	if rep.RSSDrift > 0.10 || rep.GoroutineDrift > 0.10 {
		t.Errorf("drift between minute 2 and the end: RSS %.1f%%, goroutines %.1f%%, want < 10%%", 100*rep.RSSDrift, 100*rep.GoroutineDrift)
	}
	if rep.AckedWrites == 0 || rep.SysbenchTx == 0 {
		t.Errorf("no load: %d acknowledged writes, %d sysbench transactions", rep.AckedWrites, rep.SysbenchTx)
	}
}

// sysbenchLoad reads a sysbench run's transactions and ignored errors: from its summary
// (parseSysbenchTotals) when it printed one (complete), else summed from its interval
// reports ("[ 10s ] thds: 8 tps: 123.45 qps: … err/s: 0.40 …", each covering the 10 s
// before it).
func sysbenchLoad(out []byte) (tx, errs int64, complete bool) {
	if tot, ok := parseSysbenchTotals(string(out)); ok {
		return tot.Transactions, tot.IgnoredErrors, true
	}
	var itx, ierrs float64
	last := 0.0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "[" || !strings.HasSuffix(f[1], "s") {
			continue
		}
		at, err := strconv.ParseFloat(strings.TrimSuffix(f[1], "s"), 64)
		if err != nil {
			continue
		}
		span := at - last
		last = at
		for i := 0; i+1 < len(f); i++ {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "tps:":
				itx += v * span
			case "err/s:":
				ierrs += v * span
			}
		}
	}
	return int64(itx + 0.5), int64(ierrs + 0.5), false
}

// intervalLines is sysbench's interval reports ("[ 10s ] …") from out.
func intervalLines(out []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "[ ") {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// metricValue reads an unlabelled gauge from a Prometheus text page.
func metricValue(url, name string) int64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return -1
}

// drift is |last - first| / first, first being the first sample at or after from.
func drift(samples []soakSample, from time.Duration, v func(soakSample) int64) float64 {
	var first *soakSample
	for i := range samples {
		if samples[i].At >= from && v(samples[i]) > 0 {
			first = &samples[i]
			break
		}
	}
	if first == nil || len(samples) == 0 {
		return -1
	}
	last := samples[len(samples)-1]
	d := float64(v(last)-v(*first)) / float64(v(*first))
	if d < 0 {
		d = -d
	}
	return d
}

func TestSysbenchLoad(t *testing.T) {
	intervals := "[ 10s ] thds: 8 tps: 100.50 qps: 2010.00 (r/w/o: 1407.00/402.00/201.00) lat (ms,95%): 8.43 err/s: 0.20 reconn/s: 0.00\n" +
		"[ 20s ] thds: 8 tps: 50.00 qps: 1000.00 (r/w/o: 700.00/200.00/100.00) lat (ms,95%): 9.00 err/s: 0.00 reconn/s: 0.10\n"
	summary := "SQL statistics:\n    transactions:                        1510   (25.16 per sec.)\n    ignored errors:                      2      (0.03 per sec.)\n    reconnects:                          0      (0.00 per sec.)\n"
	for _, c := range []struct {
		name     string
		out      string
		tx, errs int64
		complete bool
	}{
		{"killed: interval reports", intervals, 1505, 2, false},
		{"complete: the summary wins", intervals + summary, 1510, 2, true},
		{"nothing printed", "", 0, 0, false},
	} {
		tx, errs, complete := sysbenchLoad([]byte(c.out))
		if tx != c.tx || errs != c.errs || complete != c.complete {
			t.Errorf("%s: got tx %d errs %d complete %v, want %d %d %v", c.name, tx, errs, complete, c.tx, c.errs, c.complete)
		}
	}
}
