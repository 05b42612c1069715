package tabletd_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tabletd/tabletd/"

// layers orders the packages from the bottom up: a package may import packages of lower
// layers only (never its own layer, never a higher one), so dependencies point down and no
// component reaches around the one that owns a concern (e.g. only tabletmanager drives the
// query service's state transitions; the gRPC edge sees both but neither sees it). A package
// directory not listed here fails the test: place it when it is created. Generated protos
// (proto/…pb) sit below every layer and are not checked among themselves; test/ harnesses may
// import anything.
var layers = [][]string{
	{"proto", "rpcerr", "dbconfig", "stats", "sdnotify"},
	{"mysqlconn", "pool", "acl", "topo", "topo/localetcd", "replication", "sidecar",
		"tabletserver/plan", "tabletserver/health", "httpserver", "querylog", "backup/storage", "backup/mysqlctl"},
	{"replication/heartbeat", "tabletserver/rules", "tabletserver/consolidator"},
	{"tabletserver", "tabletmanager/schema", "vreplication", "vreplication/engine", "backup"},
	// The VReplication source reads through the query service (admission, ACLs, pools).
	{"vreplication/vstreamer", "vreplication/vdiff"},
	{"tabletmanager"},
	{"grpcserver"},
	{"tablet"},
	{"cmd/tabletd", "cmd/tabletctl"},
}

func layerOf(pkg string) (int, bool) {
	if isGenerated(pkg) {
		return -1, true
	}
	for i, l := range layers {
		for _, p := range l {
			if p == pkg {
				return i, true
			}
		}
	}
	return 0, false
}

func isGenerated(pkg string) bool {
	return strings.HasPrefix(pkg, "proto/") && strings.HasSuffix(pkg, "pb")
}

func TestLayersPointDown(t *testing.T) {
	imports := map[string]map[string]bool{} // package dir -> module packages it imports
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "test" || (strings.HasPrefix(d.Name(), ".") && p != ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || filepath.Dir(p) == "." {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if imports[dir] == nil {
			imports[dir] = map[string]bool{}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if rest, ok := strings.CutPrefix(path, module); ok {
				imports[dir][rest] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 10 {
		t.Fatalf("found only %d packages; is the test running from the repository root?", len(imports))
	}
	for pkg, deps := range imports {
		if isGenerated(pkg) {
			continue
		}
		lp, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s is in no layer: add it to layers in layers_test.go", pkg)
			continue
		}
		for dep := range deps {
			ld, ok := layerOf(dep)
			switch {
			case !ok:
				t.Errorf("%s imports %s, which is in no layer", pkg, dep)
			case ld >= lp:
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies must point down", pkg, lp, dep, ld)
			}
		}
	}
}
