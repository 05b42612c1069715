package replication

import (
	"context"
	"fmt"
)

// PrimaryStatus is a server's binary log status, what a primary reports to
// reparenting (Vitess's replicationdata.PrimaryStatus).
type PrimaryStatus struct {
	// Position is everything the server has logged: @@gtid_binlog_pos on
	// MariaDB, @@gtid_executed on MySQL.
	Position Position
	// FilePosition is the current binary log coordinate (File:Position of
	// SHOW MASTER STATUS, SHOW BINARY LOG STATUS on 8.4) as a FilePos
	// position.
	FilePosition Position
	// ServerUUID is @@server_uuid on MySQL and "" on MariaDB.
	ServerUUID string
}

// primaryStatusQuery returns the binary log status statement (8.4 removed
// SHOW MASTER STATUS).
func primaryStatusQuery(flavor Flavor) string {
	if flavor == FlavorMySQL84 {
		return "SHOW BINARY LOG STATUS"
	}
	return "SHOW MASTER STATUS"
}

const serverUUIDQuery = "SELECT @@global.server_uuid AS server_uuid"

// PrimaryFilePosition returns the server's current binary log coordinate.
// A server without binary logging returns ErrNoPrimaryStatus.
func PrimaryFilePosition(ctx context.Context, q Querier, flavor Flavor) (Position, error) {
	if err := flavor.check(); err != nil {
		return Position{}, err
	}
	query := primaryStatusQuery(flavor)
	rows, err := queryRows(ctx, q, query)
	if err != nil {
		return Position{}, err
	}
	if len(rows) == 0 {
		return Position{}, fmt.Errorf("%w: %s returned no row", ErrNoPrimaryStatus, query)
	}
	file, err := rows[0].need(query, "File")
	if err != nil {
		return Position{}, err
	}
	offset, err := rows[0].need(query, "Position")
	if err != nil {
		return Position{}, err
	}
	pos, err := ParseGTIDSet(PositionFilePos, file+":"+offset)
	if err != nil {
		return Position{}, fmt.Errorf("%w: %s: %w", ErrUnexpectedResult, query, err)
	}
	return pos, nil
}

// ReadPrimaryStatus returns the server's GTID position, binary log
// coordinate and (MySQL) server UUID. The three are read one after the
// other, not atomically; on a server taking writes they may disagree.
func ReadPrimaryStatus(ctx context.Context, q Querier, flavor Flavor) (PrimaryStatus, error) {
	filePos, err := PrimaryFilePosition(ctx, q, flavor)
	if err != nil {
		return PrimaryStatus{}, err
	}
	pos, err := PrimaryPosition(ctx, q, flavor)
	if err != nil {
		return PrimaryStatus{}, err
	}
	st := PrimaryStatus{Position: pos, FilePosition: filePos}
	if flavor.IsMySQL() {
		r, err := queryOne(ctx, q, serverUUIDQuery)
		if err != nil {
			return PrimaryStatus{}, err
		}
		if st.ServerUUID, err = r.need(serverUUIDQuery, "server_uuid"); err != nil {
			return PrimaryStatus{}, err
		}
	}
	return st, nil
}
