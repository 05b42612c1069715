// Package mysqlctl controls the local mysqld for restores, as Vitess's mysqlctl does: it reads the server's my.cnf, shuts mysqld down, and starts it again detached.
package mysqlctl

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MyCnf is what tabletd needs of a server's my.cnf (vttablet's --mycnf-file).
type MyCnf struct {
	Path     string
	DataDir  string
	Socket   string
	Port     int
	PidFile  string // "" = <datadir>/<hostname>.pid, the server's default
	User     string // the OS user mysqld runs as ("" = whoever starts it)
	ErrorLog string
	// InnoDBDataHome and InnoDBLogHome are set when InnoDB files live outside the datadir.
	InnoDBDataHome, InnoDBLogHome string
}

// serverGroups are the option groups mariadbd and mysqld read.
var serverGroups = map[string]bool{"mysqld": true, "server": true, "mariadb": true, "mariadbd": true, "mysqld-10.11": true, "mariadb-10.11": true}

// ReadMyCnf parses the server groups of path. !include lines are not followed: the settings
// tabletd reads must be in the file itself. Errors name the file and the missing setting.
func ReadMyCnf(path string) (MyCnf, error) {
	f, err := os.Open(path)
	if err != nil {
		return MyCnf{}, fmt.Errorf("--mycnf-file %s: %w", path, err)
	}
	defer f.Close()
	c := MyCnf{Path: path}
	vals := map[string]string{}
	group := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';' || line[0] == '!':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") {
				return MyCnf{}, fmt.Errorf("--mycnf-file %s line %d: group header %q lacks ']'", path, n, line)
			}
			group = strings.ToLower(strings.TrimSpace(line[1 : len(line)-1]))
			continue
		}
		if !serverGroups[group] {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		v = strings.TrimSpace(v)
		if i := strings.Index(v, " #"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		vals[k] = strings.Trim(v, `"'`)
	}
	if err := sc.Err(); err != nil {
		return MyCnf{}, fmt.Errorf("--mycnf-file %s: %w", path, err)
	}
	c.DataDir, c.Socket, c.PidFile, c.User, c.ErrorLog = vals["datadir"], vals["socket"], vals["pid_file"], vals["user"], vals["log_error"]
	c.InnoDBDataHome, c.InnoDBLogHome = vals["innodb_data_home_dir"], vals["innodb_log_group_home_dir"]
	if p := vals["port"]; p != "" {
		if c.Port, err = strconv.Atoi(p); err != nil || c.Port <= 0 || c.Port > 65535 {
			return MyCnf{}, fmt.Errorf("--mycnf-file %s: port %q is not a TCP port", path, p)
		}
	}
	switch {
	case c.DataDir == "":
		return MyCnf{}, fmt.Errorf("--mycnf-file %s: no datadir in its [mysqld] group: tabletd restores into it", path)
	case !filepath.IsAbs(c.DataDir):
		return MyCnf{}, fmt.Errorf("--mycnf-file %s: datadir %q must be an absolute path", path, c.DataDir)
	case c.Socket == "" && c.Port == 0:
		return MyCnf{}, fmt.Errorf("--mycnf-file %s: neither socket nor port in its [mysqld] group", path)
	}
	if c.PidFile != "" && !filepath.IsAbs(c.PidFile) {
		c.PidFile = filepath.Join(c.DataDir, c.PidFile)
	}
	return c, nil
}

// pidFile is where mysqld writes its process id.
func (c MyCnf) pidFile() string {
	if c.PidFile != "" {
		return c.PidFile
	}
	h, _ := os.Hostname()
	return filepath.Join(c.DataDir, h+".pid")
}

var errNoPid = errors.New("no pid file")

// readPid returns the process id mysqld wrote, or errNoPid.
func (c MyCnf) readPid() (int, error) {
	b, err := os.ReadFile(c.pidFile())
	if err != nil {
		return 0, errNoPid
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, errNoPid
	}
	return pid, nil
}
