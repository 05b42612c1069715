package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoEtcdServerLinked keeps the etcd server out of the daemon: it is only the demo's
// (tabletctl topo-server) and the tests', and linked into tabletd it cost ~10 MB of binary and
// ~11 MiB of RSS (docs/benchmarks.md, step 2 of issue 13). The import graph is the toolchain's.
func TestNoEtcdServerLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed only %d packages", len(deps))
	}
	for _, p := range deps {
		if strings.HasPrefix(p, "go.etcd.io/etcd/server/") || strings.HasSuffix(p, "/topo/localetcd") {
			t.Errorf("tabletd links %s", p)
		}
	}
}
