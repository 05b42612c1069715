package vdiff

import (
	"bytes"
	"math/big"
	"strconv"
	"strings"
)

// cmpKind says how two values of a column compare. Key columns must order exactly as MySQL
// orders them (the sources and the target sort by them); other columns only need equality.
type cmpKind int

const (
	cmpBytes    cmpKind = iota // byte order: binary strings, dates and datetimes (fixed width), JSON
	cmpSigned                  // signed integers, YEAR
	cmpUnsigned                // unsigned integers
	cmpDecimal                 // DECIMAL: numeric value ("1.50" = "1.5")
	cmpFloat                   // FLOAT, DOUBLE
	cmpTime                    // TIME: "-12:00:00" < "01:00:00" < "100:00:00"
	cmpPadBin                  // text in a PAD SPACE binary collation: bytes, trailing spaces ignored
	cmpWeight                  // text in any other collation: MySQL's WEIGHT_STRING
	cmpEnum                    // ENUM: by member index
	cmpSet                     // SET: by member bitmask
)

func isIntegral(dataType string) bool {
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		return true
	}
	return false
}

func isBinaryData(dataType string) bool {
	switch dataType {
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit":
		return true
	}
	return false
}

// numericKind is the numeric comparison of a column, or cmpBytes.
func numericKind(tc *targetColumn) cmpKind {
	switch {
	case isIntegral(tc.dataType) && strings.Contains(strings.ToLower(tc.columnType), "unsigned"):
		return cmpUnsigned
	case isIntegral(tc.dataType):
		return cmpSigned
	case tc.dataType == "decimal" || tc.dataType == "numeric":
		return cmpDecimal
	case tc.dataType == "float" || tc.dataType == "double" || tc.dataType == "real":
		return cmpFloat
	}
	return cmpBytes
}

// valueKind is how a non-key column's values are compared: numbers by value, everything else
// byte for byte (as vttablet, which compares non-key columns with the binary collation).
func valueKind(tc *targetColumn) cmpKind {
	return numericKind(tc)
}

// keyKind is how a key column orders, with the WEIGHT_STRING expression for text in a
// non-binary collation (%s is the value).
func keyKind(tc *targetColumn) (cmpKind, string) {
	if k := numericKind(tc); k != cmpBytes {
		return k, ""
	}
	switch tc.dataType {
	case "time":
		return cmpTime, ""
	case "enum":
		return cmpEnum, ""
	case "set":
		return cmpSet, ""
	}
	if tc.charset == "" || tc.charset == "binary" || tc.collation == "" {
		return cmpBytes, ""
	}
	if strings.HasSuffix(tc.collation, "_bin") && !strings.Contains(tc.collation, "nopad") {
		return cmpPadBin, ""
	}
	if strings.HasSuffix(tc.collation, "_bin") {
		return cmpBytes, ""
	}
	return cmpWeight, "weight_string(convert(%s using " + tc.charset + ") collate " + tc.collation + ")"
}

// compareKeyValue orders two non-NULL key values of a kind. members are an ENUM or SET's.
func compareKeyValue(k cmpKind, a, b []byte, members []string) int {
	switch k {
	case cmpSigned, cmpUnsigned:
		if c, ok := compareIntText(a, b); ok {
			return c
		}
	case cmpDecimal:
		return compareDecimal(a, b)
	case cmpFloat:
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(b), 64)
		if err1 == nil && err2 == nil {
			return cmp3(x < y, x > y)
		}
	case cmpTime:
		x, ok1 := timeMicros(a)
		y, ok2 := timeMicros(b)
		if ok1 && ok2 {
			return cmp3(x < y, x > y)
		}
	case cmpPadBin:
		return comparePadSpace(a, b)
	case cmpEnum:
		return cmp3(enumIndex(a, members) < enumIndex(b, members), enumIndex(a, members) > enumIndex(b, members))
	case cmpSet:
		x, y := setMask(a, members), setMask(b, members)
		return cmp3(x < y, x > y)
	}
	return bytes.Compare(a, b)
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// valuesEqual reports whether two values of a non-key column are the same.
func valuesEqual(k cmpKind, a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	switch k {
	case cmpSigned, cmpUnsigned, cmpDecimal, cmpFloat:
		return compareKeyValue(k, a, b, nil) == 0
	}
	return false
}

// compareIntText orders two integers as MySQL prints them (optional '-', digits, no leading
// zeros) without parsing them; ok is false for anything else.
func compareIntText(a, b []byte) (int, bool) {
	na := len(a) > 0 && a[0] == '-'
	nb := len(b) > 0 && b[0] == '-'
	if na {
		a = a[1:]
	}
	if nb {
		b = b[1:]
	}
	if !digits(a) || !digits(b) {
		return 0, false
	}
	if na != nb {
		if len(a) == 1 && a[0] == '0' && len(b) == 1 && b[0] == '0' {
			return 0, true // -0 = 0
		}
		return cmp3(na, nb), true
	}
	c := cmp3(len(a) < len(b), len(a) > len(b))
	if c == 0 {
		c = bytes.Compare(a, b)
	}
	if na {
		c = -c
	}
	return c, true
}

func digits(v []byte) bool {
	if len(v) == 0 || len(v) > 1 && v[0] == '0' {
		return false
	}
	for _, ch := range v {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// compareDecimal orders decimal strings ("-1.50", "2", ".5") by value.
func compareDecimal(a, b []byte) int {
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	if !ok1 || !ok2 {
		return bytes.Compare(a, b)
	}
	return x.Cmp(y)
}

// comparePadSpace compares as MySQL's PAD SPACE binary collations: the shorter value is
// compared as if padded with spaces.
func comparePadSpace(a, b []byte) int {
	n := min(len(a), len(b))
	if c := bytes.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	rest, sign := a[n:], 1
	if len(b) > len(a) {
		rest, sign = b[n:], -1
	}
	for _, ch := range rest {
		if ch != ' ' {
			return sign * cmp3(ch < ' ', ch > ' ')
		}
	}
	return 0
}

// timeMicros reads a TIME value ("-838:59:59.000000") as microseconds.
func timeMicros(v []byte) (int64, bool) {
	s := string(v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	frac := ""
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s, frac = s[:i], s[i+1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var n int64
	for _, p := range parts {
		x, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return 0, false
		}
		n = n*60 + x
	}
	n *= 1e6
	if frac != "" {
		frac = (frac + "000000")[:6]
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, false
		}
		n += f
	}
	if neg {
		n = -n
	}
	return n, true
}

// enumMembers reads the members of an "enum('a','b')" or "set(…)" column type.
func enumMembers(columnType string) []string {
	i, j := strings.IndexByte(columnType, '('), strings.LastIndexByte(columnType, ')')
	if i < 0 || j <= i {
		return nil
	}
	var out []string
	s := columnType[i+1 : j]
	for len(s) > 0 {
		if s[0] != '\'' {
			s = s[1:]
			continue
		}
		var b strings.Builder
		k := 1
		for k < len(s) {
			if s[k] == '\'' {
				if k+1 < len(s) && s[k+1] == '\'' {
					b.WriteByte('\'')
					k += 2
					continue
				}
				break
			}
			b.WriteByte(s[k])
			k++
		}
		out = append(out, b.String())
		s = s[min(k+1, len(s)):]
	}
	return out
}

// enumIndex is an ENUM value's 1-based member index (” is 0), case-insensitively as MySQL.
func enumIndex(v []byte, members []string) int {
	for i, m := range members {
		if strings.EqualFold(m, string(v)) {
			return i + 1
		}
	}
	return 0
}

func setMask(v []byte, members []string) uint64 {
	var m uint64
	for _, part := range strings.Split(string(v), ",") {
		if i := enumIndex([]byte(part), members); i > 0 && i <= 64 {
			m |= 1 << (i - 1)
		}
	}
	return m
}
