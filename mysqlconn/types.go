package mysqlconn

import (
	"fmt"

	"github.com/tabletd/tabletd/proto/querypb"
)

// MySQL column flags (column definition packet) that change the Vitess type.
const (
	flagUnsigned = 32   // UNSIGNED_FLAG
	flagBinary   = 128  // BINARY_FLAG
	flagEnum     = 256  // ENUM_FLAG
	flagSet      = 2048 // SET_FLAG
	flagNum      = 32768
)

// MySQL protocol column types (enum_field_types) named in this package.
const (
	typeTimestamp  = 7
	typeInt24      = 9
	typeYear       = 13
	typeNewDecimal = 246
)

// MySQLToType converts a column's MySQL protocol type and flags to its Vitess
// type, as Vitess's sqltypes.MySQLToType does: the protocol type gives the base
// type; UNSIGNED turns INTn into UINTn; BINARY turns TEXT into BLOB, VARCHAR
// into VARBINARY and CHAR into BINARY; ENUM and SET flags on CHAR give ENUM and
// SET. Flags are only looked at for the types they modify, because servers set
// stray flags (e.g. BINARY on DATE). A type Vitess does not know is an error.
func MySQLToType(mysqlType byte, flags uint16) (querypb.Type, error) {
	switch mysqlType {
	case 0, 246:
		return querypb.Type_DECIMAL, nil
	case 1:
		return pickUnsigned(flags, querypb.Type_INT8, querypb.Type_UINT8), nil
	case 2:
		return pickUnsigned(flags, querypb.Type_INT16, querypb.Type_UINT16), nil
	case 3:
		return pickUnsigned(flags, querypb.Type_INT32, querypb.Type_UINT32), nil
	case 4:
		return querypb.Type_FLOAT32, nil
	case 5:
		return querypb.Type_FLOAT64, nil
	case 6:
		return querypb.Type_NULL_TYPE, nil
	case 7, 17:
		return querypb.Type_TIMESTAMP, nil
	case 8:
		return pickUnsigned(flags, querypb.Type_INT64, querypb.Type_UINT64), nil
	case 9:
		return pickUnsigned(flags, querypb.Type_INT24, querypb.Type_UINT24), nil
	case 10:
		return querypb.Type_DATE, nil
	case 11, 19:
		return querypb.Type_TIME, nil
	case 12, 18:
		return querypb.Type_DATETIME, nil
	case 13:
		return querypb.Type_YEAR, nil
	case 15, 253:
		return pickBinary(flags, querypb.Type_VARCHAR, querypb.Type_VARBINARY), nil
	case 16:
		return querypb.Type_BIT, nil
	case 242:
		return querypb.Type_VECTOR, nil
	case 245:
		return querypb.Type_JSON, nil
	case 247:
		return querypb.Type_ENUM, nil
	case 248:
		return querypb.Type_SET, nil
	case 249, 250, 251, 252:
		return pickBinary(flags, querypb.Type_TEXT, querypb.Type_BLOB), nil
	case 254:
		return charType(flags), nil
	case 255:
		return querypb.Type_GEOMETRY, nil
	}
	return 0, fmt.Errorf("unsupported MySQL column type %d", mysqlType)
}

func pickUnsigned(flags uint16, signed, unsigned querypb.Type) querypb.Type {
	if flags&flagUnsigned != 0 {
		return unsigned
	}
	return signed
}

func pickBinary(flags uint16, text, binary querypb.Type) querypb.Type {
	if flags&flagBinary != 0 {
		return binary
	}
	return text
}

// charType maps MYSQL_TYPE_STRING (254): BINARY wins over ENUM over SET, as in Vitess.
func charType(flags uint16) querypb.Type {
	switch {
	case flags&flagBinary != 0:
		return querypb.Type_BINARY
	case flags&flagEnum != 0:
		return querypb.Type_ENUM
	case flags&flagSet != 0:
		return querypb.Type_SET
	}
	return querypb.Type_CHAR
}

// isNumType reports the protocol types to which Vitess (like libmysqlclient)
// adds NUM_FLAG in Field.flags: DECIMAL through INT24 except TIMESTAMP (this
// includes NULL, type 6), YEAR, and NEWDECIMAL.
func isNumType(t byte) bool {
	return (t <= typeInt24 && t != typeTimestamp) || t == typeYear || t == typeNewDecimal
}
