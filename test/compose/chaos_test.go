//go:build compose

package compose_test

import (
	"bufio"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func alias(uid int) string { return fmt.Sprintf("zone1-%010d", uid) }

// TestCluster is one compose cluster through its life; each step asserts zero acknowledged
// writes lost and records its time to recover (RECOVERY lines, $COMPOSE_RESULTS).
func TestCluster(t *testing.T) {
	c := startCluster(t)
	defer c.writeResults()
	if _, err := c.vtgate.Exec("CREATE TABLE IF NOT EXISTS writes (id BIGINT PRIMARY KEY, note VARCHAR(16))"); err != nil {
		t.Fatalf("create table through vtgate: %v", err)
	}
	dbs := map[int]*sql.DB{}
	for i := 1; i <= 3; i++ {
		dbs[100+i] = c.openMySQL(fmt.Sprintf("mariadb%d", i))
	}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	steps := []struct {
		name string
		run  func(t *testing.T, c *cluster, dbs map[int]*sql.DB)
	}{
		{"rolling restart", rollingRestart},
		{"pause a replica", pauseReplica},
		{"kill the primary's MariaDB", killPrimary},
		{"partition the primary's tabletd", partitionPrimary},
		{"backup in one container, restore into a new one", backupRestore},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { c.t = t; s.run(t, c, dbs) }) {
			c.t = t
			return // the next steps need a healthy cluster
		}
		c.t = t
	}
}

// rollingRestart restarts every tabletd container, replicas first, the primary last and in
// place: vtgate buffers the primary's writes while it restarts. Zero failed writes.
func rollingRestart(t *testing.T, c *cluster, dbs map[int]*sql.DB) {
	w := c.startWriter()
	w.waitAcks(t, 50, "writes flowing")
	begun := time.Now()
	p := c.primary()
	order := []int{}
	for uid := 101; uid <= 103; uid++ {
		if uid != p {
			order = append(order, uid)
		}
	}
	order = append(order, p)
	for _, uid := range order {
		svc := fmt.Sprintf("tabletd%d", uid-100)
		want := "REPLICA SERVING"
		if uid == p {
			want = "PRIMARY SERVING"
		}
		start := time.Now()
		c.docker("restart", "-t", "20", c.container(svc))
		c.waitState(alias(uid), want, 90*time.Second)
		c.record("rolling restart: "+svc+" back "+want, time.Since(start))
		w.waitAcks(t, 20, "writes flowing after restarting "+svc)
	}
	w.halt()
	c.record("rolling restart: longest gap between acknowledged writes", w.longestGapAfter(begun))
	if f := w.failures(); len(f) > 0 {
		t.Fatalf("%d writes through vtgate failed during the rolling restart (buffering on); first: %s", len(f), f[0])
	}
	w.checkNoLoss(t, dbs[c.primary()], "the primary")
}

// pauseReplica freezes a replica's MariaDB: its tablet stops serving, the primary goes on
// without it (it lags), and after unpause it serves again with every acknowledged write.
func pauseReplica(t *testing.T, c *cluster, dbs map[int]*sql.DB) {
	w := c.startWriter()
	w.waitAcks(t, 20, "writes flowing")
	p := c.primary()
	r := 101
	for r == p {
		r++
	}
	svc := fmt.Sprintf("mariadb%d", r-100)
	c.docker("pause", c.container(svc))
	paused := time.Now()
	unpaused := false
	defer func() {
		if !unpaused {
			_ = execDocker("unpause", c.container(svc))
		}
	}()
	eventually(t, 60*time.Second, alias(r)+" stops serving", func() bool {
		s := c.tabletStates()[alias(r)]
		return s != "" && s != "REPLICA SERVING"
	})
	c.record("pause: "+alias(r)+" seen not serving by vtgate", time.Since(paused))
	before := w.count()
	w.waitAcks(t, 50, "the primary acknowledges writes without the paused replica")
	t.Logf("lag while paused: %d writes acknowledged that %s does not have", w.count()-before, svc)
	c.docker("unpause", c.container(svc))
	unpaused = true
	back := time.Now()
	c.waitState(alias(r), "REPLICA SERVING", 90*time.Second)
	c.record("pause: "+alias(r)+" serving again after unpause", time.Since(back))
	w.halt()
	w.checkNoLoss(t, dbs[r], "the unpaused replica")
	w.checkNoLoss(t, dbs[p], "the primary")
}

// killPrimary kills the primary's MariaDB container and runs EmergencyReparentShard; the old
// primary's MariaDB comes back (crash recovery truncates what no replica acknowledged) and
// rejoins with ReparentTablet.
func killPrimary(t *testing.T, c *cluster, dbs map[int]*sql.DB) {
	w := c.startWriter()
	w.waitAcks(t, 50, "writes flowing")
	p := c.primary()
	svc := fmt.Sprintf("mariadb%d", p-100)
	killAt := time.Now()
	c.docker("kill", c.container(svc))
	ers := time.Now()
	out := c.ctl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "20s")
	c.record("kill primary MariaDB: EmergencyReparentShard command", time.Since(ers))
	t.Logf("ERS:\n%s", out)
	w.waitAcks(t, 20, "writes flowing after ERS")
	np := c.primary()
	if np == p {
		t.Fatal("ERS kept the dead primary")
	}
	c.record("kill primary MariaDB: longest gap between acknowledged writes (ERS)", w.longestGapAfter(killAt))
	w.checkNoLoss(t, dbs[np], "the new primary")
	c.docker("start", c.container(svc))
	c.reopen(dbs, p) // Docker gave the restarted container a new host port
	start := time.Now()
	eventually(t, 90*time.Second, "the old primary's tablet is a REPLICA", func() bool {
		out, err := c.tryCtl("GetTablet", alias(p))
		return err == nil && strings.Contains(out, `"type": "REPLICA"`)
	})
	c.ctl("ReparentTablet", alias(p))
	c.waitState(alias(p), "REPLICA SERVING", 90*time.Second)
	c.record("kill primary MariaDB: old primary serving as a replica after restart + ReparentTablet", time.Since(start))
	w.halt()
	w.checkNoLoss(t, dbs[p], "the old primary")
}

// writable samples every MariaDB for one that would acknowledge a write: read_only off and a
// semi-sync replica attached (with rpl_semi_sync_master_wait_no_slave=ON and an hour's timeout,
// a primary without one acknowledges nothing). It records the most seen at once.
type writableSampler struct {
	mu   sync.Mutex
	most int
	when string
	stop chan struct{}
	done chan struct{}
}

func sampleWritable(dbs map[int]*sql.DB) *writableSampler {
	s := &writableSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			var who []string
			for uid, db := range dbs {
				var ro int
				var name, clients string
				if db.QueryRow("SELECT @@global.read_only").Scan(&ro) != nil || ro != 0 {
					continue
				}
				if db.QueryRow("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &clients) != nil || clients == "0" {
					continue
				}
				who = append(who, alias(uid))
			}
			s.mu.Lock()
			if len(who) > s.most {
				s.most, s.when = len(who), time.Now().Format("15:04:05.000")+" "+strings.Join(who, ",")
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *writableSampler) finish() (int, string) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.most, s.when
}

// partitionPrimary disconnects the primary's tabletd container from the network: vtgate and
// vtctld lose it, ERS promotes a replica, and when the old one reconnects it steps down on
// seeing the newer primary term. At most one writable primary at any sample.
func partitionPrimary(t *testing.T, c *cluster, dbs map[int]*sql.DB) {
	w := c.startWriter()
	w.waitAcks(t, 50, "writes flowing")
	p := c.primary()
	svc := fmt.Sprintf("tabletd%d", p-100)
	network := c.project + "_vitess"
	sampler := sampleWritable(dbs)
	cut := time.Now()
	c.docker("network", "disconnect", network, c.container(svc))
	connected := false
	defer func() {
		if !connected {
			_ = execDocker("network", "connect", "--alias", svc, network, c.container(svc))
		}
	}()
	ers := time.Now()
	// Without --ignore-replicas: vtctld v23 then waits for n-1 of the shard's tablets (the
	// two reachable replicas) and cancels the call to the cut-off one. With the primary
	// ignored it waits for only one of the two (it assumes the primary is among the n) and
	// drops the other as unreachable, and semi_sync's rule that the new primary needs a
	// reachable replica then leaves no candidate ("no valid candidates for emergency
	// reparent") whenever one replica answers first.
	out := c.ctl("EmergencyReparentShard", "commerce/0", "--wait-replicas-timeout", "10s")
	c.record("partition: EmergencyReparentShard command", time.Since(ers))
	t.Logf("ERS:\n%s", out)
	w.waitAcks(t, 20, "writes flowing after ERS away from the partitioned primary")
	np := c.primary()
	if np == p {
		t.Fatal("ERS kept the partitioned primary")
	}
	c.record("partition: longest gap between acknowledged writes (ERS)", w.longestGapAfter(cut))
	c.docker("network", "connect", "--alias", svc, network, c.container(svc))
	connected = true
	healed := time.Now()
	eventually(t, 90*time.Second, "the reconnected old primary steps down", func() bool {
		out, err := c.tryCtl("GetTablet", alias(p))
		return err == nil && strings.Contains(out, `"type": "REPLICA"`)
	})
	c.record("partition: old primary REPLICA after reconnecting", time.Since(healed))
	most, when := sampler.finish()
	if most > 1 {
		t.Fatalf("%d writable primaries at once (%s)", most, when)
	}
	w.halt()
	w.checkNoLoss(t, dbs[np], "the new primary")
	// The old primary may hold a heartbeat no replica acknowledged (its commit waited for an
	// ack that never came): crash recovery truncates it, then it rejoins.
	mdb := fmt.Sprintf("mariadb%d", p-100)
	c.docker("kill", c.container(mdb))
	c.docker("start", c.container(mdb))
	c.reopen(dbs, p) // a new host port
	eventually(t, 90*time.Second, "ReparentTablet of the old primary", func() bool {
		_, err := c.tryCtl("ReparentTablet", alias(p))
		return err == nil
	})
	c.waitState(alias(p), "REPLICA SERVING", 90*time.Second)
	c.record("partition: old primary serving as a replica (crash recovery + ReparentTablet)", time.Since(healed))
	w.checkNoLoss(t, dbs[p], "the old primary")
}

// backupRestore starts an all-in-one tablet container (backup1: MariaDB and tabletd, file
// backup storage on the shared backups volume) that finds no backup and starts empty,
// replicating from the primary; backs it up with vtctldclient Backup; then starts a new
// container (backup2) that restores that backup on start and catches up. backup2 must serve
// as a replica holding every acknowledged write, and backup1 must be serving again.
func backupRestore(t *testing.T, c *cluster, dbs map[int]*sql.DB) {
	w := c.startWriter()
	w.waitAcks(t, 50, "writes flowing")
	start := time.Now()
	c.must("dc", "--profile", "backup", "up", "-d", "--no-deps", "backup1")
	c.waitState(alias(201), "REPLICA SERVING", 180*time.Second)
	c.record("backup: backup1 (no backup yet: started empty, replicating) serving", time.Since(start))
	start = time.Now()
	c.ctl("Backup", alias(201))
	c.record("backup: vtctldclient Backup of backup1", time.Since(start))
	if out := c.ctl("GetBackups", "commerce/0"); !strings.Contains(out, "zone1-0000000201") {
		t.Fatalf("GetBackups lists no backup of backup1:\n%s", out)
	}
	c.waitState(alias(201), "REPLICA SERVING", 60*time.Second)
	w.waitAcks(t, 50, "writes flowing after the backup")
	start = time.Now()
	c.must("dc", "--profile", "backup", "up", "-d", "--no-deps", "backup2")
	c.waitState(alias(202), "REPLICA SERVING", 180*time.Second)
	c.record("backup: backup2 restored from the backup and serving", time.Since(start))
	if n := restores(t, "http://"+c.hostPort("backup2", 15000)+"/metrics"); n == 0 {
		t.Fatal("backup2 serves but did not restore (no tabletd_restore_phase_seconds observation): it started empty")
	}
	w.waitAcks(t, 20, "writes flowing with the restored replica")
	w.halt()
	w.checkNoLoss(t, c.mysqlOf("backup2"), "the restored tablet backup2")
	w.checkNoLoss(t, c.mysqlOf("backup1"), "the backed-up tablet backup1")
	w.checkNoLoss(t, dbs[c.primary()], "the primary")
}

// restores sums tabletd_restore_phase_seconds_count on a /metrics page: how many restore
// phases the tablet timed (0: it never restored).
func restores(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "tabletd_restore_phase_seconds_count") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += v
		}
	}
	return n
}
