// Command tabletd is a drop-in replacement for Vitess's vttablet: it runs beside one MySQL or MariaDB server and serves it to Vitess.
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
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
	code := run(ctx, os.Args[1:], os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stderr io.Writer, env func(string) string) int {
	var o options
	fs := newFlagSet(&o)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "tabletd: %v (see tabletd --help)\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tabletd: unexpected argument %q: tabletd takes only flags (see tabletd --help)\n", fs.Arg(0))
		return exitUsage
	}
	if o.configFile != "" {
		if err := applyConfigFile(fs, o.configFile); err != nil {
			fmt.Fprintf(stderr, "tabletd: %v\n", err)
			return exitUsage
		}
	}
	cfg, err := o.toConfig(env)
	if err == nil {
		cfg.BuildVersion = version
		_, err = tablet.New(cfg, tablet.Deps{}) // validate before opening anything
	}
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	log, err := newLogger(o.logFormat, o.logLevel, stderr, topo.AliasString(cfg.Alias))
	if err != nil {
		fmt.Fprintf(stderr, "tabletd: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	reportCompat(fs, log)
	// The query path allocates per request and the live heap is small; collecting half as
	// often costs a few MB and saves measurable CPU per query (docs/benchmarks.md).
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

func reportCompat(fs *pflag.FlagSet, log *zap.Logger) {
	for _, n := range compatFlags {
		if f := fs.Lookup(n); f != nil && f.Changed {
			log.Warn("flag accepted for vttablet compatibility but has no effect in tabletd yet", zap.String("flag", "--"+n))
		}
	}
}

func newLogger(format, level string, w io.Writer, alias string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("--log-format %q: use json or console", format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core).With(zap.String("tablet", alias)), nil
}
