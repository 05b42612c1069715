package tabletd_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// problemKind says what a README check found wrong.
type problemKind int

const (
	missingSection   problemKind = iota // a section the checks need is gone
	noSuchTarget                        // `make X` with no target X in the Makefile
	notExecutable                       // a script that is absent or not executable
	noSuchProgram                       // bin/X, or a Vitess program, that nothing builds
	noSuchSubcommand                    // scripts/vitess-local.sh X with no subcommand X
	unknownCommand                      // a command that is none of the above nor a system tool
	vitessLinesDrift                    // the vtctld/vtgate block differs from the shared script
	noTestCommand                       // no test command in the README
	ciRunsOther                         // .ci/run does not run the README's test command
)

// problem is one finding: its kind and what it is about.
type problem struct {
	kind    problemKind
	subject string
}

// repoFacts is what the README's commands are checked against.
type repoFacts struct {
	targets     map[string]bool // Makefile targets
	executable  func(path string) bool
	programs    map[string]bool // cmd/<name>: bin/<name> after make build, or on PATH after go install
	vitess      map[string]bool // programs scripts/build-vitess.sh builds
	vitessLocal string          // scripts/vitess-local.sh print, with its default settings
	ciRun       string          // .ci/run
}

// systemTools are the commands the README may name that the project does not provide: each
// is on a fresh Debian (runuser, useradd), comes with Go, or is installed by the scripts.
var systemTools = map[string]bool{
	"go": true, "mariadb": true, "curl": true, "apt-get": true, "git": true, "etcd": true,
	"runuser": true, "useradd": true, "systemctl": true, "service": true, "cd": true, "export": true,
}

// testCommand is how the before-stop hook finds the README's test command (the first match).
var testCommand = regexp.MustCompile("(make [a-z-]*test[a-z-]*|go test [^`]*|\\./[a-zA-Z0-9_/.-]*test[a-zA-Z0-9_.-]*)")

// makeMention is a make command quoted in the README's text.
var makeMention = regexp.MustCompile("`make ([a-z][a-z0-9-]*)")

// TestReadme keeps the README's set-up commands true: its quick start and "Running beside
// real Vitess" name only make targets, scripts and programs that exist, the vtctld and vtgate
// command lines it shows are the ones scripts/vitess-local.sh runs (and the interop tests
// with it), and .ci/run runs its test command.
func TestReadme(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkReadme(string(readme), loadRepoFacts(t)) {
		t.Errorf("README.md: %s", p.describe())
	}
	// The interop tests start vtctld and vtgate through the script, so the README's lines
	// are the tested ones.
	interop, err := os.ReadFile("test/interop/interop_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(interop), `exec.Command("../../scripts/vitess-local.sh"`) {
		t.Error("test/interop no longer starts Vitess with scripts/vitess-local.sh: the README's command lines are untested")
	}
}

func (p problem) describe() string {
	switch p.kind {
	case missingSection:
		return fmt.Sprintf("section %q is missing", p.subject)
	case noSuchTarget:
		return fmt.Sprintf("`make %s`: the Makefile has no such target", p.subject)
	case notExecutable:
		return fmt.Sprintf("%s: no such executable file", p.subject)
	case noSuchProgram:
		return fmt.Sprintf("%s: neither cmd/ nor scripts/build-vitess.sh builds it", p.subject)
	case noSuchSubcommand:
		return fmt.Sprintf("scripts/vitess-local.sh has no subcommand %q", p.subject)
	case unknownCommand:
		return fmt.Sprintf("%q is not a make target, script, project or Vitess program, nor a known system tool", p.subject)
	case vitessLinesDrift:
		return "the vtctld/vtgate command lines differ from `scripts/vitess-local.sh print`; paste its output:\n" + p.subject
	case noTestCommand:
		return "no test command (make …test…, go test …, ./…test…)"
	case ciRunsOther:
		return fmt.Sprintf(".ci/run does not run the README's test command %q", p.subject)
	}
	return fmt.Sprintf("problem %d: %s", p.kind, p.subject)
}

func loadRepoFacts(t *testing.T) repoFacts {
	t.Helper()
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	f := repoFacts{
		targets:  makeTargets(read("Makefile")),
		programs: map[string]bool{},
		vitess:   map[string]bool{},
		ciRun:    read(".ci/run"),
		executable: func(path string) bool {
			st, err := os.Stat(path)
			return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
		},
	}
	dirs, err := os.ReadDir("cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		f.programs[d.Name()] = d.IsDir()
	}
	progs := regexp.MustCompile(`(?m)^progs=\(([^)]*)\)`).FindStringSubmatch(read("scripts/build-vitess.sh"))
	if progs == nil {
		t.Fatal("scripts/build-vitess.sh: no progs=(…) line naming the Vitess programs")
	}
	for _, p := range strings.Fields(progs[1]) {
		f.vitess[p] = true
	}
	// The default settings only: the environment must not change what the README is compared to.
	cmd := exec.Command("bash", "scripts/vitess-local.sh", "print")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/vitess-local.sh print: %v\n%s", err, out)
	}
	f.vitessLocal = string(out)
	return f
}

// makeTargets returns the rule names of a Makefile (not variables, not special targets).
func makeTargets(makefile string) map[string]bool {
	targets := map[string]bool{}
	rule := regexp.MustCompile(`^([A-Za-z0-9_./-]+(?:\s+[A-Za-z0-9_./-]+)*)\s*:([^=]|$)`)
	for _, line := range strings.Split(makefile, "\n") {
		if m := rule.FindStringSubmatch(line); m != nil && !strings.HasPrefix(m[1], ".") {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	return targets
}

// checkReadme returns what is wrong with the README's commands, in order of appearance.
func checkReadme(readme string, f repoFacts) []problem {
	var problems []problem
	sections := splitSections(readme)
	for _, title := range []string{"Quick start", "Running beside real Vitess"} {
		body, ok := sections[title]
		if !ok {
			problems = append(problems, problem{missingSection, title})
			continue
		}
		for _, block := range shellBlocks(body) {
			for _, cmd := range shellCommands(block) {
				problems = append(problems, checkCommand(cmd, f)...)
			}
		}
	}
	if body, ok := sections["Running beside real Vitess"]; ok && !slices.Contains(shellBlocks(body), f.vitessLocal) {
		problems = append(problems, problem{vitessLinesDrift, f.vitessLocal})
	}
	for _, m := range makeMention.FindAllStringSubmatch(readme, -1) {
		if !f.targets[m[1]] {
			problems = append(problems, problem{noSuchTarget, m[1]})
		}
	}
	switch test := testCommand.FindString(readme); {
	case test == "":
		problems = append(problems, problem{noTestCommand, ""})
	case !strings.Contains(f.ciRun, test):
		problems = append(problems, problem{ciRunsOther, test})
	}
	return problems
}

// splitSections maps each "## " heading to its text; a heading is known by its start
// ("Quick start (fresh Debian machine, as root)" is "Quick start"), so it names both.
func splitSections(readme string) map[string]string {
	sections := map[string]string{}
	parts := strings.Split("\n"+readme, "\n## ")
	for _, part := range parts[1:] {
		title, body, _ := strings.Cut(part, "\n")
		sections[title] = body
		if short, _, ok := strings.Cut(title, " ("); ok {
			sections[short] = body
		}
	}
	return sections
}

// shellBlocks returns the contents of the ```sh (or unlabelled) fenced blocks of text.
func shellBlocks(text string) []string {
	var blocks []string
	var cur strings.Builder
	lang, open := "", false
	for _, line := range strings.SplitAfter(text, "\n") {
		fence, isFence := strings.CutPrefix(strings.TrimSpace(line), "```")
		switch {
		case isFence && !open:
			lang, open = fence, true
			cur.Reset()
		case isFence:
			if lang == "sh" || lang == "" {
				blocks = append(blocks, cur.String())
			}
			open = false
		case open:
			cur.WriteString(line)
		}
	}
	return blocks
}

// shellCommands splits a shell block into simple commands, each as its words: backslash
// continuations joined, comments dropped, split at ; & && || and |. Quotes keep a word
// whole; nothing is expanded.
func shellCommands(block string) [][]string {
	var cmds [][]string
	var words []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	text := strings.ReplaceAll(block, "\\\n", " ")
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '\'' || c == '"':
			end := strings.IndexByte(text[i+1:], c)
			if end < 0 {
				end = len(text) - i - 1
			}
			word.WriteString(text[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '#' && !inWord:
			for i < len(text) && text[i] != '\n' {
				i++
			}
			endCmd()
		case c == '\n' || c == ';' || c == '&' || c == '|':
			endCmd()
		case c == ' ' || c == '\t':
			endWord()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds
}

// checkCommand checks one simple command's program (and make's targets, the script's
// subcommand).
func checkCommand(words []string, f repoFacts) []problem {
	for len(words) > 0 && strings.Contains(words[0], "=") { // VAR=value prefixes
		words = words[1:]
	}
	if len(words) > 0 && words[0] == "runuser" { // runuser -u USER -- PROGRAM …
		if i := slices.Index(words, "--"); i >= 0 {
			words = words[i+1:]
		}
	}
	if len(words) == 0 {
		return nil
	}
	prog, args := words[0], words[1:]
	var problems []problem
	switch {
	case prog == "make":
		for _, a := range args {
			if !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && !f.targets[a] {
				problems = append(problems, problem{noSuchTarget, a})
			}
		}
	case strings.HasPrefix(prog, "bin/"):
		if !f.programs[strings.TrimPrefix(prog, "bin/")] {
			problems = append(problems, problem{noSuchProgram, prog})
		}
	case filepath.IsAbs(prog):
		if !f.vitess[filepath.Base(prog)] {
			problems = append(problems, problem{noSuchProgram, prog})
		}
	case strings.Contains(prog, "/"):
		path := strings.TrimPrefix(prog, "./")
		if !f.executable(path) {
			problems = append(problems, problem{notExecutable, path})
		} else if path == "scripts/vitess-local.sh" && !vitessLocalSubcommand(f.vitessLocal, args) {
			problems = append(problems, problem{noSuchSubcommand, strings.Join(args, " ")})
		}
	case !f.programs[prog] && !f.vitess[prog] && !systemTools[prog]:
		problems = append(problems, problem{unknownCommand, prog})
	}
	return problems
}

// vitessLocalSubcommand reports whether args start with a subcommand of the script: print, or
// one whose command line print shows.
func vitessLocalSubcommand(printed string, args []string) bool {
	if len(args) == 0 {
		return false
	}
	return args[0] == "print" || strings.Contains(printed, "# scripts/vitess-local.sh "+args[0]+"\n")
}

// TestReadmeCheck: each kind of rot is caught, and a README without any passes.
func TestReadmeCheck(t *testing.T) {
	printed := "# scripts/vitess-local.sh vtgate\nrunuser -u vt -- /opt/vitess-v23/bin/vtgate --cell zone1\n"
	facts := repoFacts{
		targets:     map[string]bool{"test": true, "demo": true, "build": true},
		executable:  func(p string) bool { return p == "scripts/test.sh" || p == "scripts/vitess-local.sh" },
		programs:    map[string]bool{"tabletd": true},
		vitess:      map[string]bool{"vtgate": true, "vtctldclient": true},
		vitessLocal: printed,
		ciRun:       "#!/bin/sh\n./scripts/test.sh\n",
	}
	readme := func(quick, running string) string {
		return "# x\n\n## Quick start (fresh)\n\n```sh\n" + quick + "```\n\n## Running beside real Vitess\n\n```sh\n" +
			running + "```\n\n```sh\n" + printed + "```\n\n## Make targets\n"
	}
	good := readme("./scripts/test.sh   # the tests\nmake demo\n",
		"make build\nscripts/vitess-local.sh vtgate &   # router\nbin/tabletd --x 'a b' \\\n  --y 1 &\n"+
			"/opt/vitess-v23/bin/vtctldclient GetTablets\nmariadb -e 'show vitess_tablets'  # through vtgate\n")
	tests := []struct {
		name   string
		readme string
		want   []problem
	}{
		{"good", good, nil},
		{"missing target", strings.Replace(good, "make demo", "make demo-all", 1), []problem{{noSuchTarget, "demo-all"}}},
		{"target in text", good + "- `make proto` — regenerates\n", []problem{{noSuchTarget, "proto"}}},
		{"missing script", strings.Replace(good, "make demo\n", "./scripts/demo.sh\n", 1), []problem{{notExecutable, "scripts/demo.sh"}}},
		{"unknown subcommand", strings.Replace(good, "vitess-local.sh vtgate &", "vitess-local.sh vtgat &", 1),
			[]problem{{noSuchSubcommand, "vtgat"}}},
		{"program not built", strings.Replace(good, "bin/tabletd", "bin/tabletd2", 1), []problem{{noSuchProgram, "bin/tabletd2"}}},
		{"vitess program not built", strings.Replace(good, "bin/vtctldclient", "bin/vtadmin", 1),
			[]problem{{noSuchProgram, "/opt/vitess-v23/bin/vtadmin"}}},
		{"unknown command", strings.Replace(good, "mariadb -e", "mysql -e", 1), []problem{{unknownCommand, "mysql"}}},
		{"vitess lines drift", strings.Replace(good, "--cell zone1\n", "--cell zone2\n", 1), []problem{{vitessLinesDrift, printed}}},
		{"section gone", strings.Replace(good, "## Quick start", "## Start", 1), []problem{{missingSection, "Quick start"}}},
		{"ci runs another command", strings.Replace(good, "./scripts/test.sh ", "make test ", 1),
			[]problem{{ciRunsOther, "make test"}}},
		{"no test command", strings.Replace(good, "./scripts/test.sh ", "make demo ", 1), []problem{{noTestCommand, ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkReadme(tc.readme, facts)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("checkReadme = %+v, want %+v", got, tc.want)
			}
		})
	}
}
