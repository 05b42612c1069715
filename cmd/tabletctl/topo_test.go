package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// TestTopoServer runs `tabletctl topo-server` (a real etcd) and reads back the CellInfo it
// registered the way vtgate and tabletd read it: the cell's record points at the server itself
// and at the cell root beside the global one. Cancelling the context stops it with exit 0.
func TestTopoServer(t *testing.T) {
	dir := t.TempDir()
	epFile := filepath.Join(dir, "endpoint")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"topo-server", "--dir", filepath.Join(dir, "etcd"), "--cell", "zone7",
			"--root", "/vitess/global/", "--endpoint-file", epFile}, &out, &errb)
	}()
	var endpoint string
	deadline := time.After(60 * time.Second)
	for endpoint == "" {
		select {
		case code := <-done:
			t.Fatalf("topo-server exited %d before serving: %s", code, errb.String())
		case <-deadline:
			t.Fatal("no endpoint file after 60s")
		case <-time.After(20 * time.Millisecond):
		}
		if b, err := os.ReadFile(epFile); err == nil {
			endpoint = strings.TrimSpace(string(b))
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/vitess/global/cells/zone7/CellInfo")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("CellInfo: %d keys, want 1", len(resp.Kvs))
	}
	var ci topodatapb.CellInfo
	if err := proto.Unmarshal(resp.Kvs[0].Value, &ci); err != nil {
		t.Fatal(err)
	}
	if ci.ServerAddress != endpoint || ci.Root != "/vitess/zone7" {
		t.Fatalf("CellInfo = {%q, %q}, want {%q, /vitess/zone7}", ci.ServerAddress, ci.Root, endpoint)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel, want 0: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), endpoint) {
		t.Fatalf("stdout %q does not name the endpoint %s", out.String(), endpoint)
	}
}

func TestTopoServerUsage(t *testing.T) {
	for _, args := range [][]string{
		{"topo-server"},
		{"topo-server", "--dir", "d", "--cell", "a/b"},
		{"topo-server", "--dir", "d", "--root", "vitess"},
		{"topo-server", "--dir", "d", "--root", "/"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
