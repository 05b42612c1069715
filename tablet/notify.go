package tablet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/tabletd/tabletd/sdnotify"
)

// Ready moments for NotifyConfig.ReadyWhen.
const (
	// ReadyServing: READY=1 once the tablet serves (a replica: its lag measured). What a
	// rolling restart under systemd wants: `systemctl restart` returns when vtgate can route.
	ReadyServing = "serving"
	// ReadyRegistered: READY=1 once the tablet is in the topology, serving or not — for a
	// replica of a new shard, which serves only after vtctld's InitShardPrimary or PRS.
	ReadyRegistered = "registered"
)

// NotifyConfig is systemd's Type=notify service protocol (tablet/notify.go). cmd/tabletd
// fills Socket from $NOTIFY_SOCKET and Watchdog from $WATCHDOG_USEC; empty Socket: off.
type NotifyConfig struct {
	Socket    string
	ReadyWhen string        // ReadyServing (default) or ReadyRegistered
	Watchdog  time.Duration // WatchdogSec; 0: no WATCHDOG=1 pings
	// Poll is how often readiness and the status line are re-read (default 200ms).
	Poll time.Duration
}

// Validate names the unusable setting.
func (c NotifyConfig) Validate() error {
	switch c.ReadyWhen {
	case "", ReadyServing, ReadyRegistered:
	default:
		return fmt.Errorf("--systemd-ready %q: want %s or %s", c.ReadyWhen, ReadyServing, ReadyRegistered)
	}
	if c.Watchdog < 0 || c.Poll < 0 {
		return errors.New("systemd watchdog and poll intervals must be >= 0")
	}
	_, err := sdnotify.New(c.Socket)
	return err
}

// notifier tells systemd how the tablet is doing: READY=1 at the configured moment, STATUS=
// when the serving state changes, WATCHDOG=1 at half the watchdog interval, STOPPING=1 when
// Shutdown begins. Its one goroutine is owned by the tablet and stops on close.
type notifier struct {
	n      *sdnotify.Notifier
	cfg    NotifyConfig
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (t *Tablet) startNotify(context.Context) error {
	n, err := sdnotify.New(t.cfg.Notify.Socket)
	if err != nil || n == nil {
		return err
	}
	cfg := t.cfg.Notify
	if cfg.ReadyWhen == "" {
		cfg.ReadyWhen = ReadyServing
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.notify = &notifier{n: n, cfg: cfg, log: t.log, cancel: cancel, done: make(chan struct{})}
	go t.notify.run(ctx, t.notifyState)
	t.onClose("systemd notify", func(context.Context) { t.notify.stop() })
	return nil
}

// notifyState is what the notifier reports. Reading the query service's status each time
// also makes the watchdog meaningful: a wedged state manager stops the pings.
func (t *Tablet) notifyState() (registered, serving bool, status string) {
	st := t.qs.Status()
	registered, _, topoErr := t.tm.TopoStatus()
	rec := t.tm.Tablet()
	switch {
	case st.Serving:
		status = fmt.Sprintf("serving as %s", rec.Type)
	case !registered && topoErr != "":
		status = "not registered in the topology yet: " + topoErr
	case !registered:
		status = "registering in the topology"
	default:
		status = fmt.Sprintf("registered as %s, not serving: %s", rec.Type, st.HealthError)
	}
	return registered, st.Serving, status
}

func (n *notifier) run(ctx context.Context, state func() (bool, bool, string)) {
	defer close(n.done)
	poll := time.NewTicker(n.cfg.Poll)
	defer poll.Stop()
	var dog <-chan time.Time
	if n.cfg.Watchdog > 0 {
		tk := time.NewTicker(n.cfg.Watchdog / 2) // systemd's advice: ping at half the interval
		defer tk.Stop()
		dog = tk.C
	}
	ready, last := false, ""
	check := func() {
		registered, serving, status := state()
		var states []string
		if !ready && (serving || n.cfg.ReadyWhen == ReadyRegistered && registered) {
			ready = true
			states = append(states, sdnotify.Ready)
			n.log.Info("told systemd the tablet is ready", zap.String("ready_when", n.cfg.ReadyWhen), zap.String("status", status))
		}
		if status != last {
			last = status
			states = append(states, sdnotify.Status(status))
		}
		n.send(states...)
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			check()
		case <-dog:
			state() // blocks if the query service is wedged: then no ping, and systemd acts
			n.send(sdnotify.Watchdog)
		}
	}
}

// send logs a failure once per kind of failure: systemd gone is no reason to stop serving.
func (n *notifier) send(states ...string) {
	if err := n.n.Notify(states...); err != nil {
		n.log.Warn("cannot notify systemd", zap.String("socket", n.n.Socket()), zap.Error(err))
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
}

// notifyStopping tells systemd that shutdown began (before the drain, which may take the
// grace period).
func (t *Tablet) notifyStopping() {
	if t.notify == nil {
		return
	}
	t.notify.send(sdnotify.Stopping, sdnotify.Status("shutting down: draining requests"))
}
