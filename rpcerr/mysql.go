package rpcerr

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

// errnoCodes maps MySQL error numbers to vtrpc codes the way vttablet does
// (Vitess go/mysql/sqlerror VtRpcErrorCode), so vtgate retries, buffers and reports
// exactly as it would behind vttablet. Numbers not listed map to UNKNOWN.
var errnoCodes = func() map[uint16]vtrpcpb.Code {
	m := map[uint16]vtrpcpb.Code{}
	add := func(c vtrpcpb.Code, nums ...uint16) {
		for _, n := range nums {
			m[n] = c
		}
	}
	add(vtrpcpb.Code_UNIMPLEMENTED, 1235)
	add(vtrpcpb.Code_RESOURCE_EXHAUSTED, 1021, 1037, 1038, 1040, 1041, 1114, 1129, 1135, 1151, 1153, 1203, 1206, 1226)
	add(vtrpcpb.Code_DEADLINE_EXCEEDED, 1205)
	add(vtrpcpb.Code_UNAVAILABLE, 1053, 2002, 2003, 2006, 3168)
	add(vtrpcpb.Code_NOT_FOUND, 1029, 1032, 1054, 1094, 1109, 1122, 1141, 1146, 1147, 1176)
	add(vtrpcpb.Code_PERMISSION_DENIED, 1044, 1045, 1095, 1211, 1227)
	add(vtrpcpb.Code_FAILED_PRECONDITION, 1046, 1082, 1091, 1099, 1100, 1104, 1148, 1162, 1165, 1169, 1173, 1179,
		1207, 1215, 1216, 1217, 1223, 1230, 1241, 1242, 1264, 1288, 1289, 1291, 1451, 1452, 1817)
	add(vtrpcpb.Code_CLUSTER_EVENT, 1290)
	add(vtrpcpb.Code_ALREADY_EXISTS, 1050, 1062, 1086, 1125)
	add(vtrpcpb.Code_ABORTED, 1078, 1080, 1152, 1213)
	add(vtrpcpb.Code_INVALID_ARGUMENT, 1047, 1048, 1049, 1051, 1052, 1055, 1056, 1057, 1058, 1059, 1060, 1061,
		1063, 1064, 1065, 1066, 1067, 1068, 1069, 1070, 1071, 1072, 1073, 1074, 1075, 1083, 1084, 1085, 1089,
		1090, 1093, 1096, 1097, 1101, 1102, 1103, 1106, 1107, 1108, 1110, 1111, 1113, 1115, 1116, 1117, 1118,
		1120, 1121, 1128, 1136, 1138, 1139, 1140, 1144, 1149, 1166, 1167, 1170, 1171, 1172, 1193, 1204, 1210,
		1221, 1222, 1225, 1228, 1229, 1231, 1232, 1233, 1234, 1238, 1239, 1240, 1245, 1247, 1248, 1250, 1253,
		1267, 1270, 1271, 1272, 1273, 1280, 1281, 1283, 1292, 1293, 1294, 1298, 1300, 1366, 1367, 1406, 1525,
		1582, 1690)
	// 2013 (CR_SERVER_LOST) is what a killed query looks like to its connection.
	add(vtrpcpb.Code_CANCELED, 2013)
	return m
}()

// ErrnoCode returns the vtrpc code for a MySQL error number (UNKNOWN for numbers not listed).
func ErrnoCode(num uint16) vtrpcpb.Code {
	if c, ok := errnoCodes[num]; ok {
		return c
	}
	return vtrpcpb.Code_UNKNOWN
}

// MySQLErrno is implemented by MySQL errors that carry the server's error number and
// SQLSTATE (mysqlconn.SQLError does).
type MySQLErrno interface {
	error
	Errno() uint16
	SQLState() string
}

// Errno returns the MySQL error number and SQLSTATE carried by err (a go-sql-driver error or
// any MySQLErrno), and false when err carries none.
func Errno(err error) (num uint16, state string, ok bool) {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		state := string(me.SQLState[:])
		if me.SQLState == [5]byte{} {
			state = "HY000" // the driver leaves it empty for client-side errors
		}
		return me.Number, state, true
	}
	var mx MySQLErrno
	if errors.As(err, &mx) {
		return mx.Errno(), mx.SQLState(), true
	}
	return 0, "", false
}

// FromMySQL gives an error from MySQL its vtrpc code from the errno table and vttablet's
// message layout "<what>: <message> (errno N) (sqlstate S)", the form vtctld and vtgate parse
// the errno back from. The MySQL error stays reachable through errors.As. Errors that carry
// no errno are returned as they are (a context error keeps its own code).
func FromMySQL(err error, what string) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	num, state, ok := Errno(err)
	if !ok {
		if what == "" {
			return err
		}
		return Wrap(Code(err), err, "%s", what)
	}
	var me *mysql.MySQLError
	msg := err.Error()
	if errors.As(err, &me) {
		msg = fmt.Sprintf("%s (errno %d) (sqlstate %s)", me.Message, me.Number, state)
	}
	if what != "" {
		msg = what + ": " + msg
	}
	return WithCause(ErrnoCode(num), msg, err)
}
