package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tabletd/tabletd/backup/storage"
	tmpb "github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/topodatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/tablet"
)

// versitygwVersion is the S3 server the tests run: Versity's S3 gateway (Apache-2.0, a
// maintained S3-compatible server written in Go, installed from the Go module proxy), with its
// posix backend: buckets are directories of a temporary folder.
const versitygwVersion = "v1.8.0"

// versitygwBinary finds versitygw (PATH, then $GOPATH/bin) or installs it once per test
// process with go install; the test fails, never skips, when neither works.
var versitygwOnce struct {
	sync.Once
	path string
	err  error
}

func versitygwBinary(t *testing.T) string {
	t.Helper()
	versitygwOnce.Do(func() {
		if p, err := exec.LookPath("versitygw"); err == nil {
			versitygwOnce.path = p
			return
		}
		gobin, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			versitygwOnce.err = err
			return
		}
		p := filepath.Join(string(trimNL(gobin)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			versitygwOnce.path = p
			return
		}
		out, err := exec.Command("go", "install", "github.com/versity/versitygw/cmd/versitygw@"+versitygwVersion).CombinedOutput()
		if err != nil {
			versitygwOnce.err = fmt.Errorf("go install versitygw: %v\n%s", err, out)
			return
		}
		versitygwOnce.path = p
	})
	if versitygwOnce.err != nil {
		t.Fatalf("the S3 test server versitygw is not installed and could not be: %v (go install github.com/versity/versitygw/cmd/versitygw@%s)", versitygwOnce.err, versitygwVersion)
	}
	return versitygwOnce.path
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// s3Server is a running versitygw with one bucket.
type s3Server struct {
	endpoint string
	bucket   string
	access   string
	secret   string
}

func startS3(t *testing.T) *s3Server {
	t.Helper()
	bin := versitygwBinary(t)
	dir := t.TempDir()
	s := &s3Server{bucket: "backups", access: "tabletdtest", secret: "tabletd-test-secret"}
	if err := os.Mkdir(filepath.Join(dir, s.bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.endpoint = "http://" + addr
	cmd := exec.Command(bin, "--access", s.access, "--secret", s.secret, "--port", addr, "--quiet", "posix", dir)
	logf, _ := os.Create(filepath.Join(dir, "versitygw.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	st, err := storage.NewS3(context.Background(), s.config())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "versitygw answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.Check(ctx) == nil
	})
	return s
}

func (s *s3Server) config() storage.S3Config {
	c := storage.DefaultS3Config()
	c.Bucket, c.Root, c.Endpoint, c.ForcePathStyle = s.bucket, "vt", s.endpoint, true
	c.AccessKey, c.SecretKey = s.access, s.secret
	c.PartSize = 5 << 20 // several parts per stripe: multipart uploads are exercised
	return c
}

// TestBackupRestoreRoundTripS3 is the round trip through a real S3 server: an online backup
// of a replica under writes (multipart uploads, two stripes), restore on start into an empty
// my.cnf-managed MariaDB, caught up with identical rows; an S3 endpoint that refuses is a
// clear error and the tablet keeps serving.
func TestBackupRestoreRoundTripS3(t *testing.T) {
	t.Parallel()
	s3 := startS3(t)
	e := newEnv(t)
	s3Tweak := func(c *tablet.Config) {
		backupTweak("", 2)(c)
		c.Backup.StorageImplementation, c.Backup.FileRoot, c.Backup.S3 = "s3", "", s3.config()
	}
	ms := newShardOf(t, e, 2, s3Tweak)
	p, r := ms[0], ms[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	eventually(t, 20*time.Second, "replica replicating", func() bool { return replicatingFrom(r.root, p.db.Port) })
	w := startPrimaryWriter(t, p, 1)
	ev, err := runBackup(ctx, r.running, &tmpb.BackupRequest{})
	if err != nil {
		t.Fatalf("Backup to S3: %v\n%s", err, ev.text())
	}
	st, _ := storage.NewS3(ctx, s3.config())
	names, err := st.ListBackups(ctx, "commerce/0")
	if err != nil || len(names) != 1 {
		t.Fatalf("backups in S3: %v %v", names, err)
	}
	cs := startFromMyCnf(t, 4343)
	nt := startTablet(t, cnfTablet(e, cs, 320, func(c *tablet.Config) {
		s3Tweak(c)
		c.Backup.RestoreOnStart = true
	}))
	eventually(t, 3*time.Minute, "the tablet restored from S3 replicates", func() bool {
		return replicatingFrom(cs.root, p.db.Port) && nt.t.Manager().Tablet().Type == topodatapb.TabletType_REPLICA
	})
	w.halt()
	want := tableState(t, p.root)
	eventually(t, time.Minute, "caught up", func() bool { return tableStateOK(cs.root) == want })
	if bs := nt.t.Manager().BackupStatus(); bs.LastRestore.Name != names[0] || bs.LastRestore.Err != "" {
		t.Fatalf("restore status: %+v", bs.LastRestore)
	}

	// An endpoint that refuses: a clear error naming it, the replica as it was.
	refused := s3.config()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused.Endpoint = "http://" + l.Addr().String()
	l.Close()
	bad := startTablet(t, cnfTablet(e, cs, 321, func(c *tablet.Config) {
		s3Tweak(c)
		c.Backup.S3 = refused
	}))
	_, err = runBackup(ctx, bad, &tmpb.BackupRequest{})
	if code(err) != vtrpcpb.Code_FAILED_PRECONDITION || !strings.Contains(err.Error(), refused.Endpoint) {
		t.Fatalf("Backup to a refusing endpoint: %v; want FAILED_PRECONDITION naming %s", err, refused.Endpoint)
	}
}
