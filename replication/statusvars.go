package replication

import (
	"context"
	"fmt"
	"strings"
)

// ReadGlobalStatusVars returns the SHOW GLOBAL STATUS values of names,
// keyed by the names as given (matching is case-insensitive, as the server
// does). Names the server does not have are absent from the map. No names
// returns every status variable under the server's spelling (as Vitess's
// GetGlobalStatusVars). A name that is not an identifier ([A-Za-z0-9_])
// returns ErrInvalidArgument without asking the server.
func ReadGlobalStatusVars(ctx context.Context, q Querier, names []string) (map[string]string, error) {
	query := "SHOW GLOBAL STATUS"
	if len(names) > 0 {
		quoted := make([]string, len(names))
		for i, n := range names {
			if !isIdentifier(n) {
				return nil, fmt.Errorf("%w: status variable name %q is not an identifier", ErrInvalidArgument, n)
			}
			quoted[i] = quote(n)
		}
		query += " WHERE Variable_name IN (" + strings.Join(quoted, ", ") + ")"
	}
	rows, err := queryRows(ctx, q, query)
	if err != nil {
		return nil, err
	}
	byLower := make(map[string]string, len(names))
	for _, n := range names {
		byLower[strings.ToLower(n)] = n
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		name, ok := r.field("Variable_name", "VARIABLE_NAME")
		if !ok {
			return nil, fmt.Errorf("%w: %s: no Variable_name column", ErrUnexpectedResult, query)
		}
		value, _ := r.field("Value", "VARIABLE_VALUE")
		if len(names) == 0 {
			out[name] = value
		} else if given, ok := byLower[strings.ToLower(name)]; ok {
			out[given] = value
		}
	}
	return out, nil
}

// isIdentifier reports whether s is a non-empty [A-Za-z0-9_] word.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9')
	}) < 0
}
