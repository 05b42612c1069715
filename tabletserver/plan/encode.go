package plan

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tabletd/tabletd/proto/querypb"
)

// Type property bits of querypb.Type values (query.proto's Flag enum).
const (
	flagIsQuoted = int32(querypb.Flag_ISQUOTED)
	flagIsBinary = int32(querypb.Flag_ISBINARY)
)

// sqlEscape is Vitess's SQLEncodeMap: the character written after a backslash for each byte
// that needs escaping in a quoted literal, 0 for bytes written as they are. Double quotes are
// not escaped: literals are always single-quoted.
var sqlEscape = [256]byte{
	0:    '0',
	'\'': '\'',
	'\b': 'b',
	'\n': 'n',
	'\r': 'r',
	'\t': 't',
	26:   'Z',
	'\\': '\\',
}

// EncodeValue appends bv as a SQL literal, with Vitess's encoding (parsed_query.go
// EncodeValue and sqltypes.Value.EncodeSQL): NULL_TYPE → null; TUPLE → (v1, v2);
// ROW_TUPLE → row(v1, v2), row(...); binary types (BLOB, VARBINARY, BINARY) → _binary'...';
// other quoted types (text, dates and times, ENUM, SET, JSON, GEOMETRY, VECTOR) → '...' with
// MySQL backslash escapes; BIT → b'01...'; numbers, EXPRESSION, RAW, HEXNUM, HEXVAL and
// BITNUM verbatim. Unlike vttablet, a value written unquoted must be a number of its type (or
// a hex or bit literal): anything else is ErrBadBindValue, never SQL that changes the
// statement. The other error is a tuple element that is not a valid packed tuple
// (ErrBadTupleEncoding).
func EncodeValue(buf []byte, bv *querypb.BindVariable) ([]byte, error) {
	switch bv.GetType() {
	case querypb.Type_TUPLE:
		buf = append(buf, '(')
		for i, v := range bv.Values {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			var err error
			if buf, err = encodeSQL(buf, v.GetType(), v.GetValue(), 0); err != nil {
				return buf, err
			}
		}
		return append(buf, ')'), nil
	case querypb.Type_ROW_TUPLE:
		for i, v := range bv.Values {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = append(buf, "row"...)
			var err error
			if buf, err = encodeSQL(buf, v.GetType(), v.GetValue(), 0); err != nil {
				return buf, err
			}
		}
		return buf, nil
	case querypb.Type_RAW:
		return append(buf, bv.Value...), nil
	}
	return encodeSQL(buf, bv.GetType(), bv.GetValue(), 0)
}

// maxTupleDepth bounds the nesting of packed tuples inside tuples.
const maxTupleDepth = 32

// encodeSQL appends one value (sqltypes.Value.EncodeSQLStringBuilder).
func encodeSQL(buf []byte, typ querypb.Type, val []byte, depth int) ([]byte, error) {
	t := int32(typ)
	switch {
	case typ == querypb.Type_NULL_TYPE:
		return append(buf, "null"...), nil
	case t&flagIsBinary == flagIsBinary:
		return encodeQuoted(append(buf, "_binary"...), val), nil
	case t&flagIsQuoted == flagIsQuoted && typ != querypb.Type_BIT:
		return encodeQuoted(buf, val), nil
	case typ == querypb.Type_BIT:
		return encodeBits(buf, val), nil
	case typ == querypb.Type_TUPLE:
		if depth >= maxTupleDepth {
			return buf, fmt.Errorf("%w: tuples nested deeper than %d", ErrBadTupleEncoding, maxTupleDepth)
		}
		return encodePackedTuple(buf, val, depth+1)
	}
	// Written unquoted: a number must be one, or the value would be SQL of its own — a
	// statement of another shape, reading tables the ACL checked the template without.
	if err := checkUnquoted(typ, val); err != nil {
		return buf, err
	}
	return append(buf, val...), nil
}

// checkUnquoted accepts the values written as they are: numbers in their type's syntax,
// hex and bit literals, and EXPRESSION and RAW, which vtgate builds itself and which carry
// SQL by definition (as in Vitess). Only the syntax is checked (MySQL reads an out-of-range
// integer as a decimal: no other statement). It allocates nothing.
func checkUnquoted(typ querypb.Type, v []byte) error {
	ok := false
	switch typ {
	case querypb.Type_EXPRESSION, querypb.Type_RAW:
		return nil
	case querypb.Type_INT8, querypb.Type_INT16, querypb.Type_INT24, querypb.Type_INT32, querypb.Type_INT64:
		if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
			v = v[1:]
		}
		ok = len(v) > 0 && allOf(v, digits)
	case querypb.Type_UINT8, querypb.Type_UINT16, querypb.Type_UINT24, querypb.Type_UINT32, querypb.Type_UINT64, querypb.Type_YEAR:
		ok = len(v) > 0 && allOf(v, digits)
	case querypb.Type_FLOAT32, querypb.Type_FLOAT64, querypb.Type_DECIMAL:
		ok = isDecimal(v)
	case querypb.Type_HEXNUM:
		// 0x and 0b are lower case only: MySQL reads 0X1 and 0B1 as identifiers.
		ok = len(v) > 2 && v[0] == '0' && v[1] == 'x' && allOf(v[2:], hexDigits)
	case querypb.Type_HEXVAL:
		// X'…' needs an even number of digits (else MySQL's syntax error).
		ok = len(v) >= 3 && len(v)%2 == 1 && (v[0] == 'x' || v[0] == 'X') && v[1] == '\'' && v[len(v)-1] == '\'' &&
			allOf(v[2:len(v)-1], hexDigits)
	case querypb.Type_BITNUM:
		ok = len(v) > 2 && v[0] == '0' && v[1] == 'b' && allOf(v[2:], "01")
	default:
		return fmt.Errorf("%w: type %v cannot be written in SQL", ErrBadBindValue, typ)
	}
	if !ok {
		return fmt.Errorf("%w: %q is not a %v", ErrBadBindValue, truncateValue(v), typ)
	}
	return nil
}

const (
	digits    = "0123456789"
	hexDigits = "0123456789abcdefABCDEF"
)

// isDecimal reports [+-]digits[.digits][e[+-]digits] with at least one digit before the
// exponent: MySQL's numeric literal (no inf, no nan, no hex float).
func isDecimal(s []byte) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	n := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			n++
		}
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

func allOf(s []byte, set string) bool {
	for _, c := range s {
		if strings.IndexByte(set, c) < 0 {
			return false
		}
	}
	return true
}

// truncateValue keeps an error message short whatever the value's size.
func truncateValue(v []byte) string {
	if len(v) > 64 {
		return string(v[:64]) + "..."
	}
	return string(v)
}

// encodeQuoted appends '...' with Vitess's escaping. Like Vitess it keeps \% and \_ as they
// are (a LIKE pattern's escaped wildcard) instead of doubling the backslash.
func encodeQuoted(buf, val []byte) []byte {
	buf = append(buf, '\'')
	start := 0
	for i, c := range val {
		e := sqlEscape[c]
		if e == 0 || c == '\\' && i+1 < len(val) && (val[i+1] == '%' || val[i+1] == '_') {
			continue
		}
		buf = append(buf, val[start:i]...)
		buf = append(buf, '\\', e)
		start = i + 1
	}
	buf = append(buf, val[start:]...)
	return append(buf, '\'')
}

// encodeBits appends b'...' with eight binary digits per byte.
func encodeBits(buf, val []byte) []byte {
	buf = append(buf, "b'"...)
	for _, c := range val {
		for bit := 7; bit >= 0; bit-- {
			buf = append(buf, '0'+(c>>bit)&1)
		}
	}
	return append(buf, '\'')
}

// encodePackedTuple appends (v1, v2) from Vitess's packed tuple encoding: per value a varint
// type, a varint length and the bytes (sqltypes encodeTuple).
func encodePackedTuple(buf, val []byte, depth int) ([]byte, error) {
	buf = append(buf, '(')
	for i := 0; len(val) > 0; i++ {
		typ, n := protowire.ConsumeVarint(val)
		if n < 0 {
			return buf, fmt.Errorf("%w: value %d: bad type", ErrBadTupleEncoding, i)
		}
		val = val[n:]
		size, n := protowire.ConsumeVarint(val)
		if n < 0 || size > uint64(len(val)-n) {
			return buf, fmt.Errorf("%w: value %d: bad length", ErrBadTupleEncoding, i)
		}
		val = val[n:]
		if i > 0 {
			buf = append(buf, ", "...)
		}
		var err error
		if buf, err = encodeSQL(buf, querypb.Type(typ), val[:size], depth); err != nil {
			return buf, err
		}
		val = val[size:]
	}
	return append(buf, ')'), nil
}
