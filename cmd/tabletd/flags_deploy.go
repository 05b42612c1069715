package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/sdnotify"
	"github.com/tabletd/tabletd/tablet"
)

// deployOptions are the settings of tabletd under a service manager: systemd's Type=notify
// protocol, read from the environment systemd gives the service.
type deployOptions struct {
	readyWhen string
}

func (o *deployOptions) bind(fs *pflag.FlagSet) {
	fs.StringVar(&o.readyWhen, "systemd-ready", tablet.ReadyServing,
		"under systemd (Type=notify), when to send READY=1: serving (the tablet serves) or registered (in the topology, serving or not) (tabletd's own flag)")
}

// apply reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, then removes them from the
// process's environment: the programs tabletd starts (mariadbd, mariabackup) must not speak
// for the service (mariadbd would send its own READY=1).
func (o *deployOptions) apply(c *tablet.Config, env func(string) string) error {
	dog, err := sdnotify.WatchdogInterval(env("WATCHDOG_USEC"), env("WATCHDOG_PID"), os.Getpid())
	if err != nil {
		return fmt.Errorf("systemd watchdog: %w", err)
	}
	c.Notify = tablet.NotifyConfig{Socket: env("NOTIFY_SOCKET"), ReadyWhen: o.readyWhen, Watchdog: dog}
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		_ = os.Unsetenv(k)
	}
	return c.Notify.Validate()
}
