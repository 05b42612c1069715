package mariadbtest

import (
	"fmt"
	"strings"
)

// Vitess-style accounts created in every server, each for hosts '%' and
// 'localhost', all with password Password. root@localhost (unix socket, and
// root@127.0.0.1 over TCP) has no password.
const (
	Password     = "tabletd-test"
	UserDBA      = "vt_dba"      // ALL PRIVILEGES WITH GRANT OPTION
	UserApp      = "vt_app"      // read-write application traffic (appPrivileges)
	UserAppDebug = "vt_appdebug" // read-only debugging (SELECT, SHOW DATABASES, PROCESS)
	UserAllPrivs = "vt_allprivs" // administrative work without SUPER (appPrivileges)
	UserRepl     = "vt_repl"     // replication connections (REPLICATION SLAVE)
	UserFiltered = "vt_filtered" // VReplication (appPrivileges)
)

// appPrivileges is what Vitess's init_db.sql grants vt_app, vt_allprivs and
// vt_filtered.
const appPrivileges = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, FILE, " +
	"REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, " +
	"REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, " +
	"CREATE USER, EVENT, TRIGGER"

// usersSQL returns the statements run by mariadb-install-db (--extra-file)
// after it created the system tables, while the server is in bootstrap mode.
// Running them in the template instead of in each server makes servers
// start with the users already there and keeps them out of the binlog, so
// every server starts with an empty GTID position.
func usersSQL() string {
	var b strings.Builder
	// Bootstrap mode starts without the grant tables loaded, and CREATE USER
	// refuses to run until they are.
	b.WriteString("FLUSH PRIVILEGES;\n")
	// Anonymous users, and root@<hostname> that --skip-name-resolve ignores
	// (with a warning at every start).
	b.WriteString("DELETE FROM mysql.global_priv WHERE User = '';\n")
	b.WriteString("DELETE FROM mysql.global_priv WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');\n")
	b.WriteString("DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');\n")
	b.WriteString("FLUSH PRIVILEGES;\n")
	grants := []struct{ user, privileges, option string }{
		{UserDBA, "ALL PRIVILEGES", " WITH GRANT OPTION"},
		{UserApp, appPrivileges, ""},
		{UserAppDebug, "SELECT, SHOW DATABASES, PROCESS", ""},
		{UserAllPrivs, appPrivileges, ""},
		{UserRepl, "REPLICATION SLAVE", ""},
		{UserFiltered, appPrivileges, ""},
	}
	for _, g := range grants {
		for _, host := range []string{"%", "localhost"} {
			fmt.Fprintf(&b, "CREATE USER '%s'@'%s' IDENTIFIED BY '%s';\n", g.user, host, Password)
			fmt.Fprintf(&b, "GRANT %s ON *.* TO '%s'@'%s'%s;\n", g.privileges, g.user, host, g.option)
		}
	}
	return b.String()
}
