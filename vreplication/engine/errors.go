package engine

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// terminalMarker starts the message of a stream put in state Error, as vttablet writes it
// ("terminal error: …"); vtctld shows a stream whose message contains "error" as Error.
const terminalMarker = "terminal error"

// errnoInText finds the MySQL error number a remote tablet put in an error's text.
var errnoInText = regexp.MustCompile(`\(errno (\d+)\)`)

// remoteErrno is the MySQL error number of err: its own, or the one its text names (an
// error that came over gRPC keeps the errno only in its text).
func remoteErrno(err error) uint16 {
	if n := errno(err); n != 0 {
		return n
	}
	if m := errnoInText.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 16)
		return uint16(n)
	}
	return 0
}

// erBinlogPurged is ER_MASTER_FATAL_ERROR_READING_BINLOG: the source no longer has the binlog
// the stream's position needs (MySQL and MariaDB both answer a dump from a purged position
// with it).
const erBinlogPurged = 1236

// unrecoverable are MySQL errors that retrying the same events cannot cure (vttablet's
// isUnrecoverableError list: schema mismatches, bad data, missing privileges or objects).
var unrecoverable = map[uint16]bool{
	1044: true, 1045: true, 1048: true, 1052: true, 1054: true, 1060: true, 1061: true, 1062: true,
	1063: true, 1064: true, 1091: true, 1097: true, 1106: true, 1107: true, 1108: true, 1109: true,
	1118: true, 1128: true, 1136: true, 1146: true, 1148: true, 1149: true, 1169: true, 1171: true,
	1221: true, 1227: true, 1230: true, 1235: true, 1239: true, 1264: true, 1265: true, 1273: true,
	1288: true, 1289: true, 1290: true, 1292: true, 1305: true, 1364: true, 1366: true, 1367: true,
	1406: true, 1411: true, 1416: true, 1525: true, 1690: true, 3055: true, 3140: true, 3141: true,
	3142: true, 3144: true, 3147: true, 3150: true, 3157: true,
	erBinlogPurged: true,
}

// isTerminal reports whether a stream error is one retrying cannot heal: a bad request
// (INVALID_ARGUMENT), a failed precondition other than a tablet that changed type, or one of
// the unrecoverable MySQL errors.
func isTerminal(err error) bool {
	if err == nil {
		return false
	}
	switch rpcerr.Code(err) {
	case vtrpcpb.Code_INVALID_ARGUMENT:
		return true
	case vtrpcpb.Code_FAILED_PRECONDITION:
		msg := err.Error()
		return !strings.Contains(msg, rpcerr.WrongTablet) && !strings.Contains(msg, "NOT_SERVING") &&
			!strings.Contains(msg, "SHUTTING_DOWN")
	}
	return unrecoverable[remoteErrno(err)]
}

// explain makes a stream error readable on its own: a purged binlog says so in words.
func explain(err error, pos string) string {
	msg := err.Error()
	if remoteErrno(err) == erBinlogPurged {
		return "the source no longer has the binary logs this stream needs (purged past position " + pos +
			"); the stream cannot resume without losing events: " + msg
	}
	return msg
}
