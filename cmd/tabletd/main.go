// Command tabletd is a drop-in replacement for Vitess's vttablet: it runs beside one MySQL or MariaDB server and serves it to Vitess.
// Started as vttablet (a symlink or a copy named so), it takes every vttablet v23 flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/tabletd/tabletd/tablet"
	"github.com/tabletd/tabletd/topo"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes: 2 for bad configuration (flags, config file, topology records that refuse the
// tablet), 1 for anything else that stops the daemon.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, redactProcessArgs(), os.Stdout, os.Stderr, os.Getenv) // flags_security.go
	stop()
	os.Exit(code)
}

// run is the daemon; argv[0] is the name it was started under ("vttablet" through the
// drop-in symlink), which --version and --help use.
func run(ctx context.Context, argv []string, stdout, stderr io.Writer, env func(string) string) int {
	prog, args := progName(argv[0]), argv[1:]
	var o options
	fs := newFlagSet(&o)
	fs.SetOutput(io.Discard) // errors are reported below, one line each
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		var unknown *pflag.NotExistError
		if errors.As(err, &unknown) {
			names := unknownFlags(fs, args)
			fmt.Fprintf(stderr, "tabletd: unknown flag(s) %s: not vttablet v%s flags nor tabletd's (see %s --help)\n",
				strings.Join(names, ", "), vitessMajor, prog)
			return exitUsage
		}
		fmt.Fprintf(stderr, "tabletd: %v (see %s --help)\n", err, prog)
		return exitUsage
	}
	switch {
	case o.showHelp:
		printHelp(stdout, prog, fs)
		return exitOK
	case o.showVersion:
		fmt.Fprintln(stdout, versionLine(prog, version))
		return exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tabletd: unexpected argument %q: tabletd takes only flags (see %s --help)\n", fs.Arg(0), prog)
		return exitUsage
	}
	if o.configFile != "" {
		if err := applyConfigFile(fs, o.configFile); err != nil {
			fmt.Fprintf(stderr, "tabletd: %v\n", err)
			return exitUsage
		}
	}
	if alias, err := topo.ParseTabletAlias(o.tabletPath); err == nil {
		o.waitForMycnf(ctx, env, alias.Uid) // mysqlctl may still be writing it, as vttablet allows
	}
	cfg, err := o.toConfig(env)
	if err == nil {
		cfg.BuildVersion = version
		cfg.NotImplementedFlags = notImplementedGiven(fs, o.accepted)
		_, err = tablet.New(cfg, tablet.Deps{}) // validate before opening anything
	}
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	stderr = o.security.maskWriter(stderr) // from here on no output carries a password
	logFile, err := o.logs.openFile(prog, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	if logFile != nil {
		defer logFile.Close()
	}
	log, err := newLogger(o.logFormat, o.logLevel, stderr, o.security.maskWriter(writerOrNil(logFile)), topo.AliasString(cfg.Alias))
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	if len(cfg.NotImplementedFlags) > 0 {
		log.Warn("vttablet flags accepted but not implemented by tabletd: they have no effect (also on /debug/status)",
			zap.Strings("flags", cfg.NotImplementedFlags))
	}
	o.security.logStart(log, argv, cfg)
	// Go's default 100, as vttablet: GC is ~2% of CPU per query while 200 cost ~10 MiB of
	// RSS (docs/benchmarks.md, step 2 of issue 13); operators tune it with --gc-percent.
	if env("GOGC") == "" && o.gcPercent > 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	if o.pidFile != "" {
		if err := os.WriteFile(o.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			fmt.Fprintf(stderr, "tabletd: --pid-file: %v\n", err)
			return exitUsage
		}
		defer os.Remove(o.pidFile)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	t, err := tablet.New(cfg, tablet.Deps{Log: log, Registry: reg})
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	o.security.useSecrets(t.Secrets)
	// SIGHUP re-reads the table ACL file; a bad file keeps the ACL in force.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupDone := make(chan struct{})
	defer func() { signal.Stop(hup); close(hupDone) }()
	go func() {
		for {
			select {
			case <-hupDone:
				return
			case <-hup:
				_ = t.ReloadTableACL() // logged and shown on /debug/status by the tablet
				_ = t.ReloadSecurity() // credentials file, gRPC certificates, static auth; logged
			}
		}
	}()
	if err := t.Run(ctx); err != nil {
		log.Error("tabletd stopped", zap.Error(err))
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		if tablet.IsConfigError(err) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
}

// applyConfigFile sets every key of the YAML file whose flag was not given on the command line.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("--config %s: not valid YAML: %w", path, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := string(fs.GetNormalizeFunc()(fs, k))
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("--config %s: unknown setting %q (keys are tabletd flag names, e.g. tablet-path)", path, k)
		}
		if f.Changed {
			continue // the command line wins
		}
		if err := fs.Set(name, yamlValue(m[k])); err != nil {
			return fmt.Errorf("--config %s: %s: %w", path, k, err)
		}
	}
	return nil
}

func yamlValue(v any) string {
	switch x := v.(type) {
	case []any:
		s := ""
		for i, e := range x {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprint(e)
		}
		return s
	case map[string]any:
		s := ""
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				s += ","
			}
			s += k + ":" + fmt.Sprint(x[k])
		}
		return s
	}
	return fmt.Sprint(v)
}

// writerOrNil keeps a nil *os.File from becoming a non-nil io.Writer.
func writerOrNil(f *os.File) io.Writer {
	if f == nil {
		return nil
	}
	return f
}
