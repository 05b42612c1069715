package vstreamer

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/tabletd/tabletd/proto/querypb"
)

// Binlog row values arrive decoded by go-mysql (Go ints, floats, strings, bytes); rowValues
// turns them into the text a SELECT returns for the column (what VStreamRows sends), with
// Vitess's deviations where a vttablet target depends on them:
//   - integers by the column's signedness (the binlog carries only the bits);
//   - FLOAT and DOUBLE in Go's shortest exponent form ('E'), exactly as Vitess streams them;
//   - ENUM and SET as their member names (FieldEvent.enum_set_string_values), BIT as its
//     big-endian bytes, YEAR 0 as "0000";
//   - BINARY(n) right-padded with zero bytes to n, as MySQL returns it (the binlog strips the
//     padding); TIMESTAMP in UTC (go-mysql is configured so).
//
// vals[i] aliases nothing of the event: it is safe to keep.
func rowValues(p *plan, tm tableMapInfo, row []interface{}) (vals [][]byte, nulls []bool, err error) {
	if len(row) != len(p.fields) {
		return nil, nil, fmt.Errorf("table %s: the binlog row has %d columns, the table has %d", p.table, len(row), len(p.fields))
	}
	vals = make([][]byte, len(row))
	nulls = make([]bool, len(row))
	for i, v := range row {
		if v == nil {
			nulls[i] = true
			continue
		}
		b, err := cellText(v, p.fields[i], tm.types[i], tm.meta[i], p.enums[i])
		if err != nil {
			return nil, nil, fmt.Errorf("table %s column %s: %w", p.table, p.fields[i].Name, err)
		}
		vals[i] = b
	}
	return vals, nulls, nil
}

// tableMapInfo is what a TABLE_MAP event says about the columns.
type tableMapInfo struct {
	types []byte
	meta  []uint16
}

func cellText(v interface{}, f *querypb.Field, typ byte, meta uint16, members []string) ([]byte, error) {
	switch x := v.(type) {
	case int8:
		return intText(int64(x), uint64(uint8(x)), f), nil
	case int16:
		return intText(int64(x), uint64(uint16(x)), f), nil
	case int32:
		if typ == mysql.MYSQL_TYPE_INT24 {
			return intText(int64(x), uint64(uint32(x))&0xFFFFFF, f), nil
		}
		return intText(int64(x), uint64(uint32(x)), f), nil
	case int64:
		return int64Text(x, f, typ, meta, members)
	case int:
		if typ == mysql.MYSQL_TYPE_YEAR && x == 0 {
			return []byte("0000"), nil
		}
		return strconv.AppendInt(nil, int64(x), 10), nil
	case float32:
		return strconv.AppendFloat(nil, float64(x), 'E', -1, 32), nil
	case float64:
		return strconv.AppendFloat(nil, x, 'E', -1, 64), nil
	case string:
		return padBinary([]byte(x), f), nil
	case []byte:
		return padBinary(append([]byte(nil), x...), f), nil
	}
	return nil, fmt.Errorf("unexpected binlog value of Go type %T", v)
}

func intText(signed int64, unsigned uint64, f *querypb.Field) []byte {
	if isUnsigned(f.Type) {
		return strconv.AppendUint(nil, unsigned, 10)
	}
	return strconv.AppendInt(nil, signed, 10)
}

// int64Text handles BIGINT and the types go-mysql decodes to int64: ENUM (index), SET
// (bitmask) and BIT (the value).
func int64Text(x int64, f *querypb.Field, typ byte, meta uint16, members []string) ([]byte, error) {
	real := typ
	if typ == mysql.MYSQL_TYPE_STRING && meta >= 256 {
		real = byte(meta >> 8) // ENUM and SET travel as STRING with their type in the metadata
	}
	switch {
	case real == mysql.MYSQL_TYPE_ENUM || f.Type == querypb.Type_ENUM:
		if x == 0 {
			return []byte{}, nil // the error value '' of an invalid ENUM
		}
		if int(x) > len(members) {
			return nil, fmt.Errorf("ENUM index %d beyond the column's %d members (%s)", x, len(members), f.ColumnType)
		}
		return []byte(members[x-1]), nil
	case real == mysql.MYSQL_TYPE_SET || f.Type == querypb.Type_SET:
		var names []string
		for m := uint64(x); m != 0; m &= m - 1 {
			i := bits.TrailingZeros64(m)
			if i >= len(members) {
				return nil, fmt.Errorf("SET bit %d beyond the column's %d members (%s)", i, len(members), f.ColumnType)
			}
			names = append(names, members[i])
		}
		return []byte(strings.Join(names, ",")), nil
	case typ == mysql.MYSQL_TYPE_BIT || f.Type == querypb.Type_BIT:
		nbits := int(meta>>8)*8 + int(meta&0xFF)
		n := (nbits + 7) / 8
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(x))
		return append([]byte(nil), buf[8-n:]...), nil
	}
	return intText(x, uint64(x), f), nil
}

func isUnsigned(t querypb.Type) bool {
	switch t {
	case querypb.Type_UINT8, querypb.Type_UINT16, querypb.Type_UINT24, querypb.Type_UINT32, querypb.Type_UINT64:
		return true
	}
	return false
}

// padBinary right-pads a BINARY(n) value with zero bytes to n, as MySQL returns it.
func padBinary(b []byte, f *querypb.Field) []byte {
	if f.Type != querypb.Type_BINARY {
		return b
	}
	ct := strings.ToLower(f.ColumnType)
	if !strings.HasPrefix(ct, "binary(") {
		return b
	}
	n, err := strconv.Atoi(strings.TrimSuffix(ct[len("binary("):], ")"))
	if err != nil || len(b) >= n {
		return b
	}
	return append(b, make([]byte, n-len(b))...)
}

// compatibleType reports whether a binlog column type can hold values of a column of type t
// (a coarse check, enough to see that a definition still lines up with an event).
func compatibleType(bt byte, meta uint16, t querypb.Type) bool {
	switch bt {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_LONGLONG:
		return isSigned(t) || isUnsigned(t)
	case mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return t == querypb.Type_FLOAT32 || t == querypb.Type_FLOAT64
	case mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_DECIMAL:
		return t == querypb.Type_DECIMAL
	case mysql.MYSQL_TYPE_YEAR:
		return t == querypb.Type_YEAR
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE:
		return t == querypb.Type_DATE
	case mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2:
		return t == querypb.Type_TIME
	case mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2:
		return t == querypb.Type_DATETIME
	case mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2:
		return t == querypb.Type_TIMESTAMP
	case mysql.MYSQL_TYPE_BIT:
		return t == querypb.Type_BIT
	case mysql.MYSQL_TYPE_JSON:
		return t == querypb.Type_JSON
	case mysql.MYSQL_TYPE_GEOMETRY:
		return t == querypb.Type_GEOMETRY
	case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
		return t == querypb.Type_ENUM || t == querypb.Type_SET
	case mysql.MYSQL_TYPE_STRING:
		if meta >= 256 {
			switch byte(meta >> 8) {
			case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
				return t == querypb.Type_ENUM || t == querypb.Type_SET
			}
		}
		return isText(t)
	case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_TINY_BLOB,
		mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB:
		return isText(t) || t == querypb.Type_JSON // MariaDB's JSON is a LONGTEXT
	}
	return true // a type this check does not know: do not stop the stream over it
}

func isText(t querypb.Type) bool {
	switch t {
	case querypb.Type_VARCHAR, querypb.Type_CHAR, querypb.Type_TEXT, querypb.Type_VARBINARY, querypb.Type_BINARY,
		querypb.Type_BLOB, querypb.Type_ENUM, querypb.Type_SET:
		return true
	}
	return false
}
