package mysqlctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadMyCnf(t *testing.T) {
	c, err := ReadMyCnf("testdata/good.cnf")
	if err != nil {
		t.Fatal(err)
	}
	want := MyCnf{Path: "testdata/good.cnf", DataDir: "/vt/vt_0000000101/data", Socket: "/vt/vt_0000000101/mysql.sock", Port: 17101,
		PidFile: "/vt/vt_0000000101/data/mysql.pid", ErrorLog: "/vt/vt_0000000101/error.log", InnoDBDataHome: "/vt/vt_0000000101/innodb/data"}
	if c != want {
		t.Fatalf("ReadMyCnf:\n%+v\nwant\n%+v", c, want)
	}
}

func TestReadMyCnfBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no datadir", "[mysqld]\nport=1\n", "no datadir"},
		{"relative datadir", "[mysqld]\ndatadir=data\nport=1\n", "absolute"},
		{"no socket or port", "[mysqld]\ndatadir=/d\n", "neither socket nor port"},
		{"bad port", "[mysqld]\ndatadir=/d\nport=http\n", "not a TCP port"},
		{"datadir only in [client]", "[client]\ndatadir=/d\nport=1\n", "no datadir"},
		{"broken group", "[mysqld\ndatadir=/d\n", "lacks ']'"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".cnf")
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadMyCnf(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--mycnf-file") {
			t.Errorf("%s: %v; want an error with %q naming --mycnf-file", tc.name, err, tc.want)
		}
	}
	if _, err := ReadMyCnf(filepath.Join(dir, "absent.cnf")); err == nil {
		t.Error("a missing my.cnf was accepted")
	}
}

func TestAlive(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Fatal("this process is not alive")
	}
	if alive(1 << 30) {
		t.Fatal("a process that cannot exist is alive")
	}
}
