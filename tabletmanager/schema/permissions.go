package schema

import (
	"context"
	"hash/crc64"
	"strings"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
)

// passwordHashTable is Vitess's checksum table for the password column (crc64 ISO).
var passwordHashTable = crc64.MakeTable(crc64.ISO)

// GetPermissions lists mysql.user and mysql.db as Vitess does, sorted by their keys so that
// tablets can be compared. No password hash leaves the tablet: the password column becomes
// a CRC-64 checksum, and authentication_string (which holds the hash of other plugins) and
// password_last_changed (different on every server) are left out.
func (e *Engine) GetPermissions(ctx context.Context) (*tabletmanagerdatapb.Permissions, error) {
	c, err := e.connect(ctx, roleDba, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	p := &tabletmanagerdatapb.Permissions{}
	users, err := fetch(ctx, c, "SELECT * FROM mysql.user ORDER BY host, user", -1)
	if err != nil {
		return nil, err
	}
	for _, r := range users.Rows {
		p.UserPermissions = append(p.UserPermissions, userPermission(users.Fields, rowValues(r)))
	}
	dbs, err := fetch(ctx, c, "SELECT * FROM mysql.db ORDER BY host, db, user", -1)
	if err != nil {
		return nil, err
	}
	for _, r := range dbs.Rows {
		p.DbPermissions = append(p.DbPermissions, dbPermission(dbs.Fields, rowValues(r)))
	}
	return p, nil
}

// userPermission is Vitess's tmutils.NewUserPermission: columns matched case-insensitively,
// every other column a privilege (NULL as "").
func userPermission(fields []*querypb.Field, vals []value) *tabletmanagerdatapb.UserPermission {
	up := &tabletmanagerdatapb.UserPermission{Privileges: map[string]string{}}
	for i, f := range fields {
		switch strings.ToLower(f.Name) {
		case "host":
			up.Host = vals[i].s
		case "user":
			up.User = vals[i].s
		case "password":
			up.PasswordChecksum = crc64.Checksum([]byte(vals[i].s), passwordHashTable)
		case "password_last_changed", "authentication_string":
		default:
			up.Privileges[f.Name] = vals[i].s
		}
	}
	return up
}

// dbPermission is Vitess's tmutils.NewDbPermission (column names matched exactly, as there).
func dbPermission(fields []*querypb.Field, vals []value) *tabletmanagerdatapb.DbPermission {
	dp := &tabletmanagerdatapb.DbPermission{Privileges: map[string]string{}}
	for i, f := range fields {
		switch f.Name {
		case "Host":
			dp.Host = vals[i].s
		case "Db":
			dp.Db = vals[i].s
		case "User":
			dp.User = vals[i].s
		default:
			dp.Privileges[f.Name] = vals[i].s
		}
	}
	return dp
}
