package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tabletd/tabletd/dbconfig"
	"github.com/tabletd/tabletd/tablet"
)

// mycnfWait is how long vttablet waits for the tablet's my.cnf to appear at start (mysqlctl
// or mysqlctld may still be creating it); tabletd waits as long, then uses the socket path.
const mycnfWait = 10 * time.Second

// tabletDir is mysqlctl's directory for the tablet: $VTDATAROOT/vt_<uid, 10 digits>; "" when
// VTDATAROOT is not set.
func tabletDir(env func(string) string, uid uint32) string {
	root := env("VTDATAROOT")
	if root == "" {
		return ""
	}
	return filepath.Join(root, fmt.Sprintf("vt_%010d", uid))
}

// mycnf is what tabletd reads from a mysqlctl-made my.cnf: where mysqld listens.
type mycnf struct {
	socket string
	port   int
}

// readMycnf reads the socket and port of a my.cnf as vttablet does: every "key = value" line
// counts whatever its section, '_' and '-' alike in keys, the last one wins.
func readMycnf(path string) (mycnf, error) {
	var m mycnf
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch strings.ReplaceAll(strings.TrimSpace(k), "_", "-") {
		case "socket":
			m.socket = strings.TrimSpace(v)
		case "port":
			p, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || p <= 0 || p > 65535 {
				return m, fmt.Errorf("%s: port %q is not a TCP port", path, strings.TrimSpace(v))
			}
			m.port = p
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// localMySQL applies vttablet's conventions when no connection flag names the server
// (--db-host, --db-socket): the tablet's my.cnf ($VTDATAROOT/vt_<uid>/my.cnf, as mysqlctl
// and vitess-operator's mysqlctld write it) gives the socket and the port (the port goes into
// the tablet record, where replicas find their source); without one, --mycnf-socket-file;
// without that, mysqlctl's socket $VTDATAROOT/vt_<uid>/mysql.sock.
func (o *options) localMySQL(c *tablet.Config, env func(string) string) error {
	if c.DB.Host != "" || c.DB.Socket != "" {
		return nil
	}
	portGiven := o.fs.Changed("db-port")
	dir := tabletDir(env, c.Alias.Uid)
	if dir != "" {
		path := filepath.Join(dir, "my.cnf")
		m, err := readMycnf(path)
		switch {
		case err == nil:
			c.DB.Socket = orDefault(m.socket, filepath.Join(dir, "mysql.sock"))
			if m.port != 0 && !portGiven {
				c.DB.Port = m.port
			}
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("the tablet's my.cnf: %w (give --db-socket or --db-host to connect without it)", err)
		}
	}
	if o.mycnfSocket != "" {
		c.DB.Socket = o.mycnfSocket
	} else if dir != "" {
		c.DB.Socket = filepath.Join(dir, "mysql.sock")
	}
	if o.mycnfPort != 0 && !portGiven {
		c.DB.Port = o.mycnfPort
	}
	return nil
}

// managedMycnf is vttablet's default for managed mode: with MySQL beside the tablet (no
// --db-host) and neither --mycnf-file nor --mysqlctl-socket, the tablet's own
// $VTDATAROOT/vt_<uid>/my.cnf, when there is one, is what restores stop and start mysqld with.
func (o *options) managedMycnf(c *tablet.Config, env func(string) string) {
	if o.db.Host != "" || c.Backup.MyCnfFile != "" || c.Backup.MysqlctlSocket != "" {
		return
	}
	dir := tabletDir(env, c.Alias.Uid)
	if dir == "" {
		return
	}
	if path := filepath.Join(dir, "my.cnf"); fileExists(path) {
		c.Backup.MyCnfFile = path
	}
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// waitForMycnf waits, as vttablet does, up to mycnfWait for the tablet's my.cnf when the
// conventions will look for it; it returns early when ctx ends.
func (o *options) waitForMycnf(ctx context.Context, env func(string) string, uid uint32) {
	if o.db.Host != "" || o.db.Socket != "" {
		return
	}
	dir := tabletDir(env, uid)
	if dir == "" {
		return
	}
	path := filepath.Join(dir, "my.cnf")
	deadline := time.NewTimer(mycnfWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// applyCredentialsFile reads --db-credentials-file, Vitess's JSON {"user": ["password", …]}:
// a user listed there logs in with the first password, whatever --db-*-password says (as
// vttablet's file credentials server does).
func applyCredentialsFile(db *dbconfig.Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--db-credentials-file: %w", err)
	}
	var creds map[string][]string
	if err := json.Unmarshal(data, &creds); err != nil {
		return fmt.Errorf("--db-credentials-file %s: not Vitess's JSON {\"user\": [\"password\"]}: %w", path, err)
	}
	for _, r := range dbconfig.Roles {
		cred := db.Users[r]
		pw, ok := creds[cred.User]
		if !ok {
			continue
		}
		if len(pw) == 0 {
			return fmt.Errorf("--db-credentials-file %s: user %q has no password (give [\"\"] for an empty one)", path, cred.User)
		}
		cred.Password = pw[0]
		db.Users[r] = cred
	}
	return nil
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
