package engine

import (
	"context"
	"fmt"

	"github.com/tabletd/tabletd/rpcerr"
)

// erTableAccessDenied is ER_TABLEACCESS_DENIED_ERROR: the only failure that means "no".
const erTableAccessDenied = 1142

// ValidatePermissions tries, as the filtered user and in a transaction that is rolled back,
// each statement VReplication runs on vreplication rows: select, insert, update, delete
// (vttablet's functional check, which needs no access to mysql.user). ok is false only when
// MySQL refused one with error 1142; msg then names the permission. It works on any tablet
// type: vtctld asks source primaries before switching traffic.
func (e *Engine) ValidatePermissions(ctx context.Context, alias string) (user string, ok bool, msg string, err error) {
	user = e.cfg.Filtered.User
	c := newConn(e.cfg.Filtered)
	defer c.close()
	if err := c.begin(ctx); err != nil {
		return user, false, "", rpcerr.Wrap(rpcerr.Code(err), err, "failed to start transaction for permission testing")
	}
	defer c.rollback()
	wf := fmt.Sprintf("__permission_test_%d", e.now().UnixNano())
	sc := e.sidecarID()
	tests := []struct{ perm, sql string }{
		{"SELECT", fmt.Sprintf("select count(*) from %s.vreplication limit 1", sc)},
		{"INSERT", fmt.Sprintf("insert into %s.vreplication (workflow, source, pos, max_tps, max_replication_lag, cell, tablet_types, "+
			"time_updated, transaction_timestamp, state, db_name, workflow_type, workflow_sub_type, defer_secondary_keys, options) "+
			"values (%s, '', '', 0, 0, '', '', now(), 0, 'Stopped', '__test__', 0, 0, false, '{}')", sc, QuoteString(wf))},
		{"UPDATE", fmt.Sprintf("update %s.vreplication set message = '__test_update__' where workflow = %s and db_name = '__test__'", sc, QuoteString(wf))},
		{"DELETE", fmt.Sprintf("delete from %s.vreplication where workflow = %s and db_name = '__test__'", sc, QuoteString(wf))},
	}
	for _, t := range tests {
		if _, err := c.exec(ctx, t.sql); err != nil {
			if errno(err) != erTableAccessDenied {
				return user, false, "", rpcerr.Wrap(rpcerr.Code(err), err, "error executing %s permission test query", t.perm)
			}
			return user, false, fmt.Sprintf("user %s does not have %s permission on %s.vreplication table on tablet %s: %v",
				user, t.perm, e.sidecar(), alias, err), nil
		}
	}
	return user, true, "", nil
}
