package tablet

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tabletd/tabletd/acl"
	"github.com/tabletd/tabletd/tabletserver/rules"
)

// fileLoader loads a protection file (table ACL, query rules) at start, on SIGHUP and every
// reload interval. A file that fails to load on reload never replaces what is in force: the
// old ACL or rules stay, the error is logged, counted and shown on /debug/status. A bad file
// never opens access.
type fileLoader struct {
	flag     string                  // the flag naming the file, for messages
	path     string                  // the file
	apply    func(data []byte) error // parses and installs; must install nothing on error
	log      *zap.Logger
	failures prometheus.Counter

	mu       sync.Mutex
	last     []byte // content of the file in force
	loadedAt time.Time
	lastErr  error
}

// ConfigError is a configuration the tablet cannot start with (exit code 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// startLoader loads path once (a failure is a ConfigError) and re-reads it every interval.
func (t *Tablet) startLoader(name, flag, path string, every time.Duration, apply func([]byte) error) (*fileLoader, error) {
	l := &fileLoader{flag: flag, path: path, apply: apply, log: t.log,
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tabletd_config_reload_errors_total",
			Help: "Reloads of a protection file that failed (what was in force stayed).", ConstLabels: prometheus.Labels{"config": name}})}
	if err := t.reg.Register(l.failures); err != nil {
		return nil, err
	}
	if err := l.reload(); err != nil {
		return nil, &ConfigError{fmt.Errorf("%s %s: %w", flag, path, err)}
	}
	if every > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					_ = l.reload()
				}
			}
		}()
		t.onClose(name+" reloader", func(context.Context) { cancel(); <-done })
	}
	return l, nil
}

func (t *Tablet) openTableACL(context.Context) error {
	if t.cfg.TableACLFile == "" {
		if t.cfg.EnforceTableACL {
			return &ConfigError{fmt.Errorf("--enforce-tableacl-config is set but --table-acl-config is not: give the table ACL file")}
		}
		return nil
	}
	l, err := t.startLoader("table_acl", "--table-acl-config", t.cfg.TableACLFile, t.cfg.TableACLReloadInterval, func(data []byte) error {
		cfg, err := acl.ParseConfig(data)
		if err != nil {
			return err
		}
		a, err := acl.Compile(cfg)
		if err != nil {
			return err
		}
		t.qs.SetTableACL(a)
		return nil
	})
	if err != nil {
		return err
	}
	t.aclLoader.Store(l)
	return nil
}

func (t *Tablet) openQueryRules(context.Context) error {
	if t.cfg.QueryRulesFile == "" {
		return nil
	}
	every := time.Duration(0)
	if t.cfg.QueryRulesWatch {
		every = time.Second
	}
	l, err := t.startLoader("query_rules", "--filecustomrules", t.cfg.QueryRulesFile, every, func(data []byte) error {
		rs, err := rules.Parse(data)
		if err != nil {
			return err
		}
		t.qs.SetQueryRules(rs)
		return nil
	})
	if err != nil {
		return err
	}
	t.rulesLoader.Store(l)
	return nil
}

// ReloadTableACL re-reads the table ACL and query rules files now (cmd/tabletd calls it on
// SIGHUP). It returns the first error; a failed file keeps what was in force.
func (t *Tablet) ReloadTableACL() error {
	var first error
	for _, l := range []*fileLoader{t.aclLoader.Load(), t.rulesLoader.Load()} {
		if l == nil {
			continue
		}
		if err := l.reload(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// reload installs the file's content when it changed and is valid.
func (l *fileLoader) reload() error {
	data, err := os.ReadFile(l.path)
	if err == nil {
		l.mu.Lock()
		same := l.last != nil && bytes.Equal(data, l.last)
		l.mu.Unlock()
		if same {
			return nil
		}
		err = l.apply(data)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.lastErr = err
		l.failures.Inc()
		l.log.Error("file not (re)loaded; what was in force stays", zap.String("flag", l.flag), zap.String("file", l.path), zap.Error(err))
		return err
	}
	l.last, l.loadedAt, l.lastErr = data, time.Now(), nil
	l.log.Info("file loaded", zap.String("flag", l.flag), zap.String("file", l.path))
	return nil
}

// status is what /debug/status shows.
func (l *fileLoader) status() (file string, loadedAt time.Time, lastErr string) {
	if l == nil {
		return "", time.Time{}, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr != nil {
		lastErr = l.lastErr.Error()
	}
	return l.path, l.loadedAt, lastErr
}

// serveFile answers with the content in force of a loaded file, or fallback when none.
func serveFile(l *fileLoader, fallback string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if l == nil {
			_, _ = w.Write([]byte(fallback))
			return
		}
		l.mu.Lock()
		data := l.last
		l.mu.Unlock()
		_, _ = w.Write(data)
	}
}
