//go:build interop

package interop

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// reparentOut is where TestReparentTimings writes its raw figures (make bench-reparent sets
// it to docs/reparent-raw.json); empty: the figures are only logged.
var reparentOut = flag.String("reparent-out", "", "write TestReparentTimings' raw results (JSON) to this file")

// reparentRounds sets how many PRS and ERS rounds TestReparentTimings measures.
var reparentRounds = flag.Int("reparent-rounds", 3, "PRS and ERS rounds measured by TestReparentTimings")

// reparentRound is one measured reparent.
type reparentRound struct {
	Kind            string  `json:"kind"` // PRS or ERS
	From            string  `json:"from"`
	To              string  `json:"to"`
	CommandSeconds  float64 `json:"command_seconds"`   // vtctldclient's run time (ERS: from the kill)
	WriteGapSeconds float64 `json:"write_gap_seconds"` // longest wait for an acknowledged write through vtgate
	FailedWrites    int     `json:"failed_writes"`     // writes that got an error (never acknowledged)
	Lost            int     `json:"lost_acknowledged_writes"`
}

type reparentReport struct {
	Date             string          `json:"date"`
	Commit           string          `json:"commit"`
	MariaDB          string          `json:"mariadb"`
	Vitess           string          `json:"vitess"`
	Setup            string          `json:"setup"`
	Tabletd          []reparentRound `json:"tabletd"`
	Vttablet         []reparentRound `json:"vttablet"`
	VttabletPRSError string          `json:"vttablet_prs_error"`
	VttabletERSError string          `json:"vttablet_ers_error"`
}

// TestReparentTimings measures write unavailability through vtgate (buffering on) for
// PlannedReparentShard and, after kill -9 of the primary's mariadbd, EmergencyReparentShard,
// on a three-tablet MariaDB shard of tabletd — and tries the same PRS on a shard of Vitess's
// own vttablet on the same MariaDB, recording what happens. Timings are logged (and written
// with -reparent-out), never asserted; lost writes are asserted (zero).
func TestReparentTimings(t *testing.T) {
	rep := reparentReport{Date: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(),
		MariaDB: mariadbVersion(), Vitess: vitessVersion(),
		Setup: "3 MariaDB 10.11 servers, semi_sync durability, one writer inserting through vtgate (--enable-buffer), 2 shared cores"}
	rep.Tabletd = measureTabletd(t, *reparentRounds)
	rep.Vttablet, rep.VttabletPRSError, rep.VttabletERSError = tryVttablet(t)
	for _, r := range rep.Tabletd {
		t.Logf("tabletd %s %s→%s: command %.3fs, longest write wait %.3fs, %d failed writes, %d lost",
			r.Kind, r.From, r.To, r.CommandSeconds, r.WriteGapSeconds, r.FailedWrites, r.Lost)
	}
	t.Logf("vttablet v23 PRS on MariaDB: %s", rep.VttabletPRSError)
	t.Logf("vttablet v23 ERS on MariaDB after kill -9: %s", rep.VttabletERSError)
	if *reparentOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*reparentOut, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func measureTabletd(t *testing.T, rounds int) []reparentRound {
	c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-size", "10000",
		"--buffer-min-time-between-failovers", "1s", "--buffer-max-failover-duration", "20s")
	ts := c.newShard(3, semiSyncArgs)
	c.ctl("InitShardPrimary", "--force", "commerce/0", ts[0].alias)
	waitReplicating(t, ts[0], ts)
	c.waitState(ts[0].alias, "PRIMARY SERVING", 30*time.Second)
	c.ctl("SetKeyspaceDurabilityPolicy", "--durability-policy=semi_sync", "commerce")
	if _, err := c.vtgateDB.Exec("CREATE TABLE commerce.writes (id BIGINT PRIMARY KEY, note VARCHAR(16))"); err != nil {
		t.Fatal(err)
	}
	w := startWriter(t, c)
	w.waitAcks(t, 100, "writes flowing")
	var out []reparentRound
	failedBefore := func() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.errors) }
	for i := 0; i < rounds; i++ {
		from := c.primaryOf(ts)
		to := ts[(indexOf(ts, from)+1)%len(ts)]
		f0, start := failedBefore(), time.Now()
		c.ctl("PlannedReparentShard", "commerce/0", "--new-primary", to.alias)
		took := time.Since(start)
		w.waitAcks(t, 100, "writes after PRS")
		waitReplicating(t, to, ts)
		out = append(out, reparentRound{Kind: "PRS", From: from.alias, To: to.alias, CommandSeconds: took.Seconds(),
			WriteGapSeconds: w.longestGap(start, time.Now()).Seconds(), FailedWrites: failedBefore() - f0})
	}
	alive := ts
	for i := 0; i < rounds && len(alive) > 1; i++ {
		p := c.primaryOf(alive)
		eventually(t, 30*time.Second, "semi-sync active", func() bool {
			var name, status string
			return p.root.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_status'").Scan(&name, &status) == nil && status == "ON"
		})
		f0, killAt := failedBefore(), time.Now()
		p.db.Kill(t)
		c.ctl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "20s")
		took := time.Since(killAt)
		w.waitAcks(t, 100, "writes after ERS")
		np := c.primaryOf(alive)
		out = append(out, reparentRound{Kind: "ERS", From: p.alias, To: np.alias, CommandSeconds: took.Seconds(),
			WriteGapSeconds: w.longestGap(killAt, time.Now()).Seconds(), FailedWrites: failedBefore() - f0})
		// The old primary comes back read-only, truncated to what was acknowledged, and rejoins.
		p.db.RestartWith(t, crashRecoveryArgs...)
		eventually(t, 30*time.Second, p.alias+" steps down", func() bool {
			out, err := c.tryCtl("GetTablet", p.alias)
			return err == nil && strings.Contains(out, `"type": "REPLICA"`)
		})
		c.ctl("ReparentTablet", p.alias)
		waitReplicating(t, np, alive)
	}
	w.halt()
	final := c.primaryOf(ts)
	w.checkNoLoss(t, final)
	return out
}

// tryVttablet builds the same shard with Vitess's vttablet and runs InitShardPrimary,
// PlannedReparentShard, and EmergencyReparentShard after kill -9 of the primary's mariadbd,
// returning what vtctld answered to each reparent.
func tryVttablet(t *testing.T) (rounds []reparentRound, prs, ers string) {
	c := newCluster(t)
	var ts []*shardTablet
	for i := 0; i < 3; i++ {
		db := mariadbtest.Start(t, mariadbtest.Options{ExtraArgs: semiSyncArgs})
		st := &shardTablet{uid: 101 + i, alias: fmt.Sprintf("zone1-%010d", 101+i), db: db, root: db.RootDB(t), vttablet: true}
		c.startVttablet(st.uid, db)
		ts = append(ts, st)
	}
	eventually(t, 90*time.Second, "GetTablets lists the vttablets", func() bool {
		out, err := c.tryCtl("GetTablets", "--keyspace", "commerce")
		return err == nil && strings.Count(out, "commerce 0 ") == 3
	})
	if out, err := c.tryCtl("InitShardPrimary", "--force", "commerce/0", ts[0].alias); err != nil {
		return nil, "InitShardPrimary failed: " + lastLine(out), "not tried"
	}
	outcome := func(out string, err error) string {
		if err != nil {
			return "failed: " + lastLine(out)
		}
		return "succeeded"
	}
	start := time.Now()
	out, err := c.tryCtl("PlannedReparentShard", "commerce/0", "--new-primary", ts[1].alias)
	rounds = append(rounds, reparentRound{Kind: "PRS", From: ts[0].alias, To: ts[1].alias, CommandSeconds: time.Since(start).Seconds()})
	prs = outcome(out, err)
	p := c.primaryOf(ts)
	killAt := time.Now()
	p.db.Kill(t)
	out, err = c.tryCtl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "20s")
	rounds = append(rounds, reparentRound{Kind: "ERS", From: p.alias, CommandSeconds: time.Since(killAt).Seconds()})
	return rounds, prs, outcome(out, err)
}

func indexOf(ts []*shardTablet, st *shardTablet) int {
	for i, x := range ts {
		if x == st {
			return i
		}
	}
	return 0
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		commit += "-dirty"
	}
	return commit
}

func mariadbVersion() string {
	out, _ := exec.Command("/usr/sbin/mariadbd", "--version").Output()
	return strings.TrimSpace(string(out))
}

func vitessVersion() string {
	out, _ := exec.Command(os.Getenv("VITESS_BIN")+"/vtctldclient", "--version").CombinedOutput()
	return strings.Join(strings.Fields(string(out)), " ")
}
