//go:build interop

package interop

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/test/mariadbtest"
)

// TestStatusPageUnderSysbench: sysbench oltp_read_write (8 threads) through an unmodified
// vtgate to a tabletd primary, plus a few duplicate keys and slow statements; while it runs,
// headless Chromium screenshots /debug/status. The screenshot (STATUS_SCREENSHOT, default a
// file in the test's folder) must show the charts drawn with data: pixels in the charts'
// colours, and the page's QPS chart must hold a line of at least ten points. The load lasts
// STATUS_LOAD_SECONDS (default 120; the charts get a point every 5 seconds).
func TestStatusPageUnderSysbench(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: apt-get install chromium")
	}
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench is not installed: make interop installs it (apt-get install sysbench)")
	}
	loadFor := 120 * time.Second
	if v := os.Getenv("STATUS_LOAD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 30 {
			t.Fatalf("STATUS_LOAD_SECONDS=%q: want whole seconds, at least 30", v)
		}
		loadFor = time.Duration(n) * time.Second
	}
	shot := os.Getenv("STATUS_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "status.png")
	}

	c := newCluster(t)
	db := mariadbtest.Start(t, mariadbtest.Options{})
	db.Exec(t, "CREATE DATABASE vt_commerce")
	tab := c.startTabletd(db, "PRIMARY")
	c.waitState("zone1-0000000100", "PRIMARY SERVING", 60*time.Second)
	common := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=127.0.0.1",
		"--mysql-port=" + fmt.Sprint(c.vtgateMySQLPort), "--mysql-user=user", "--mysql-db=commerce",
		"--db-ps-mode=disable", "--tables=4", "--table-size=25000"}
	if out, err := exec.Command("sysbench", append(common, "prepare")...).CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := exec.CommandContext(ctx, "sysbench", append(common, "--threads=8",
		fmt.Sprintf("--time=%d", int(loadFor.Seconds())+30), "--report-interval=0", "run")...)
	var sbOut bytes.Buffer
	run.Stdout, run.Stderr = &sbOut, &sbOut
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	sbDone := make(chan error, 1)
	go func() { sbDone <- run.Wait() }()
	defer func() { cancel(); <-sbDone }()

	// Beside sysbench: a duplicate key and a slow statement every few seconds, so the
	// errors and slow-query sections have something to show.
	extra := func(deadline time.Time) {
		conn, err := c.vtgateDB.Conn(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = conn.ExecContext(ctx, "use commerce")
		for i := 0; time.Now().Before(deadline); i++ {
			_, _ = conn.ExecContext(ctx, "insert into sbtest1 (id, k, c, pad) values (1, 1, 'dup', 'dup')")
			if i%3 == 0 {
				var x sql.NullInt64
				_ = conn.QueryRowContext(ctx, "select sleep(0.25)").Scan(&x)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}
	deadline := time.Now().Add(loadFor)
	extraDone := make(chan struct{})
	go func() { defer close(extraDone); extra(deadline) }()
	select {
	case err := <-sbDone:
		t.Fatalf("sysbench ended before the screenshot: %v\n%s", err, sbOut.String())
	case <-time.After(time.Until(deadline)):
	}
	<-extraDone

	url := fmt.Sprintf("http://127.0.0.1:%d/debug/status", tab.httpPort)
	page := httpBody(t, url)
	sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=1400,2400", "--screenshot="+shot, url)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	t.Logf("screenshot of %s under sysbench: %s", url, shot)
	checkScreenshot(t, shot)
	checkChartPoints(t, page)
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	out, err := exec.Command("curl", "-fsS", url).Output()
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return string(out)
}

// checkScreenshot decodes the PNG and requires the charts' line colours (QPS blue, p50 green,
// p99 red) on enough pixels to be drawn lines, not a legend dot.
func checkScreenshot(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() != 1400 || b.Dy() != 2400 {
		t.Errorf("screenshot is %dx%d, want 1400x2400", b.Dx(), b.Dy())
	}
	colours := map[string][3]uint8{"QPS blue": {0x1f, 0x77, 0xb4}, "p50 green": {0x2c, 0xa0, 0x2c}, "p99 red": {0xd6, 0x27, 0x28}}
	for name, want := range colours {
		if n := countNear(img, want); n < 150 {
			t.Errorf("%s: %d pixels in the screenshot, want a drawn line (>= 150)", name, n)
		}
	}
}

func countNear(img image.Image, c [3]uint8) int {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c[0]) && near(g>>8, c[1]) && near(bl>>8, c[2]) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, want uint8) bool { d := int(v) - int(want); return d > -24 && d < 24 }

// checkChartPoints: the first chart (queries per second) holds a polyline of at least ten
// points, and the header shows a QPS above zero.
func checkChartPoints(t *testing.T, page string) {
	t.Helper()
	m := regexp.MustCompile(`<polyline fill="none" stroke="#1f77b4"[^>]*points="([^"]*)"`).FindStringSubmatch(page)
	if m == nil || len(strings.Fields(m[1])) < 10 {
		t.Errorf("the QPS chart has no line of ten points:\n%s", page)
	}
	q := regexp.MustCompile(`· ([\d.]+) queries/s`).FindStringSubmatch(page)
	if q == nil {
		t.Fatalf("no QPS in the header")
	}
	if v, _ := strconv.ParseFloat(q[1], 64); v <= 0 {
		t.Errorf("header QPS %s under load", q[1])
	}
}
