package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os/exec"
	"strings"
)

// treeState is the tabletd source a run measures: the commit checked out
// and the changes outside test/bench and docs (which a benchmark run itself
// writes), as `git status --porcelain` lines.
type treeState struct {
	Commit string
	Dirty  []string
}

// benchOwnPaths are left out of the clean-tree check: the harness and the
// documents a run writes do not go into the tabletd binary.
var benchOwnPaths = []string{"test/bench", "docs"}

// readTree reads HEAD and the porcelain status of dir's work tree.
func readTree(ctx context.Context, dir string) (treeState, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return treeState{}, fmt.Errorf("git rev-parse HEAD in %s: %w", dir, err)
	}
	st := treeState{Commit: strings.TrimSpace(string(out))}
	args := []string{"-C", dir, "status", "--porcelain", "--", "."}
	for _, p := range benchOwnPaths {
		args = append(args, ":(exclude)"+p)
	}
	out, err = exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		return treeState{}, fmt.Errorf("git status in %s: %w", dir, err)
	}
	st.Dirty = porcelainLines(string(out))
	return st, nil
}

// porcelainLines splits `git status --porcelain` output into its entries.
func porcelainLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, "\r"))
		}
	}
	return lines
}

// short is the commit's abbreviated name.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// sourceVerdict decides whether a run may measure the tree read before the
// build (before) and after it (after): a tree that changed during the build
// was not the one compiled. allowDirty lets a dirty or moving tree through,
// marked dirty.
func sourceVerdict(before, after treeState, allowDirty bool) (dirty bool, err error) {
	var why []string
	if before.Commit != after.Commit {
		why = append(why, fmt.Sprintf("HEAD moved from %s to %s during the build", short(before.Commit), short(after.Commit)))
	}
	if len(before.Dirty) > 0 || len(after.Dirty) > 0 {
		files := before.Dirty
		if len(files) == 0 {
			files = after.Dirty
		}
		shown := files
		if len(shown) > 10 {
			shown = append(shown[:10:10], fmt.Sprintf("… and %d more", len(files)-10))
		}
		why = append(why, fmt.Sprintf("the tree has changes outside %s:\n  %s",
			strings.Join(benchOwnPaths, " and "), strings.Join(shown, "\n  ")))
	}
	if len(why) == 0 {
		return false, nil
	}
	if allowDirty {
		return true, nil
	}
	return true, fmt.Errorf("refusing to measure a tree that is not a clean commit (-allow-dirty measures it anyway, marked dirty): %s",
		strings.Join(why, "; "))
}

// binaryVCS is the commit a prebuilt Go binary was built from and whether
// its tree had changes (the go command's vcs.revision and vcs.modified).
func binaryVCS(path string) (commit string, modified, ok bool) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", false, false
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			commit, ok = s.Value, true
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return commit, modified, ok
}

// prebuiltVerdict is sourceVerdict for -tabletd-bin: the commit comes from
// the binary's build info; a binary without one, or built from a modified
// tree (the go command cannot say where), counts as dirty.
func prebuiltVerdict(path string, allowDirty bool) (commit string, dirty bool, err error) {
	commit, modified, ok := binaryVCS(path)
	switch {
	case !ok:
		commit = "unknown"
		err = fmt.Errorf("%s carries no vcs.revision build info, so the commit it measures is unknown", path)
	case modified:
		err = fmt.Errorf("%s was built from a modified tree (vcs.modified=true)", path)
	default:
		return commit, false, nil
	}
	if allowDirty {
		return commit, true, nil
	}
	return commit, true, fmt.Errorf("refusing to measure it (-allow-dirty measures it anyway, marked dirty): %w", err)
}
