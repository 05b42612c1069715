// Package tabletd_test holds repository-wide checks: every package states its purpose in one
// doc comment and none is a grab-bag.
package tabletd_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bannedNames are grab-bag package names: a package is named after what it provides.
var bannedNames = map[string]bool{"util": true, "utils": true, "common": true, "helpers": true, "helper": true, "misc": true}

func TestPackageDocs(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d package directories; is the test running from the repository root?", len(dirs))
	}
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") },
			parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for name, pkg := range pkgs {
			if bannedNames[name] || bannedNames[filepath.Base(dir)] {
				t.Errorf("%s: package %q is a grab-bag name; name it after what it provides", dir, name)
			}
			docs := 0
			for _, f := range pkg.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					docs++
				}
			}
			if docs == 0 {
				t.Errorf("%s: package %s has no doc comment; add one sentence saying what it provides", dir, name)
			}
		}
	}
}

// TestFlagsOnlyInCmd keeps flag and environment reading out of the libraries.
func TestFlagsOnlyInCmd(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p == "cmd" || (strings.HasPrefix(d.Name(), ".") && p != ".") || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || strings.HasPrefix(p, "test/") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			switch strings.Trim(imp.Path.Value, `"`) {
			case "flag", "github.com/spf13/pflag":
				t.Errorf("%s imports %s: flags belong in cmd/; take a Config instead", p, imp.Path.Value)
			}
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), "os.Getenv(") || strings.Contains(string(src), "os.LookupEnv(") {
			t.Errorf("%s reads the environment: only cmd/ may; take a Config instead", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
