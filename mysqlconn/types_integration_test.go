package mysqlconn

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// allTypesTable has one column of every type MariaDB 10.11 can create.
const allTypesTable = `CREATE TABLE types.t (
	id int NOT NULL PRIMARY KEY,
	i8 tinyint, u8 tinyint unsigned, i16 smallint, u16 smallint unsigned,
	i24 mediumint, u24 mediumint unsigned, i32 int, u32 int unsigned zerofill, i64 bigint, u64 bigint unsigned,
	d decimal(10,3), f float, db double, b bit(5), y year,
	dt date, tm time(3), dtm datetime(6), ts timestamp(2) NULL DEFAULT NULL,
	c char(4), vc varchar(10), tx text, bl blob, bn binary(3), vb varbinary(7),
	e enum('a','b'), s set('x','y'), j json, g geometry, pt point,
	lt longtext, mb mediumblob, tb tinyblob, ct char(3) CHARACTER SET latin1,
	uu uuid, i4 inet4, i6 inet6)`

const allTypesRow = `INSERT INTO types.t VALUES (1,
	-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 42, -9223372036854775808, 18446744073709551615,
	-1234567.891, 1.25, 2.5e100, b'10101', 2024,
	'2024-01-02', '-838:59:58.999', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.12',
	'ab', 'héllo', 'text', x'00ff', 'ij', x'6b6c00',
	'b', 'y,x', '{"a": [1, "x"]}', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(3 4)'),
	'long', 'medium', 'tiny', 'ct',
	'123e4567-e89b-12d3-a456-426614174000', '1.2.3.4', '::1')`

// wkbPoint is the text-protocol value of a GEOMETRY point: a 4-byte SRID (0),
// then WKB (little-endian byte order, type 1, x, y).
func wkbPoint(x, y float64) string {
	b := []byte{0, 0, 0, 0, 1, 1, 0, 0, 0}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(y))
	return string(b)
}

// columnTypeCase is one column of allTypesTable as vttablet would report it.
type columnTypeCase struct {
	col      string
	typ      querypb.Type
	flags    uint32
	charset  uint32
	length   uint32
	decimals uint32
	value    string
}

// columnTypeCases lists allTypesTable's columns, in order, with the attributes
// and the first row's value MariaDB 10.11 sends.
func columnTypeCases() []columnTypeCase {
	const (
		num     = flagNum
		binFlag = flagBinary
		blob    = 16
		unsig   = flagUnsigned
		notNull = 1
		pk      = 2
		partKey = 16384
		noDflt  = 4096
		zero    = 64
		utf8mb4 = 45
		binCS   = 63
		maxLen  = 4294967295
	)
	return []columnTypeCase{
		{"id", querypb.Type_INT32, notNull | pk | noDflt | partKey | num, binCS, 11, 0, "1"},
		{"i8", querypb.Type_INT8, num, binCS, 4, 0, "-128"},
		{"u8", querypb.Type_UINT8, unsig | num, binCS, 3, 0, "255"},
		{"i16", querypb.Type_INT16, num, binCS, 6, 0, "-32768"},
		{"u16", querypb.Type_UINT16, unsig | num, binCS, 5, 0, "65535"},
		{"i24", querypb.Type_INT24, num, binCS, 9, 0, "-8388608"},
		{"u24", querypb.Type_UINT24, unsig | num, binCS, 8, 0, "16777215"},
		{"i32", querypb.Type_INT32, num, binCS, 11, 0, "-2147483648"},
		{"u32", querypb.Type_UINT32, unsig | zero | num, binCS, 10, 0, "0000000042"},
		{"i64", querypb.Type_INT64, num, binCS, 20, 0, "-9223372036854775808"},
		{"u64", querypb.Type_UINT64, unsig | num, binCS, 20, 0, "18446744073709551615"},
		{"d", querypb.Type_DECIMAL, num, binCS, 12, 3, "-1234567.891"},
		{"f", querypb.Type_FLOAT32, num, binCS, 12, 31, "1.25"},
		{"db", querypb.Type_FLOAT64, num, binCS, 22, 31, "2.5e100"},
		{"b", querypb.Type_BIT, unsig, binCS, 5, 0, "\x15"},
		{"y", querypb.Type_YEAR, unsig | zero | num, binCS, 4, 0, "2024"},
		{"dt", querypb.Type_DATE, binFlag, binCS, 10, 0, "2024-01-02"},
		{"tm", querypb.Type_TIME, binFlag, binCS, 14, 3, "-838:59:58.999"},
		{"dtm", querypb.Type_DATETIME, binFlag, binCS, 26, 6, "2024-01-02 03:04:05.123456"},
		{"ts", querypb.Type_TIMESTAMP, binFlag | unsig, binCS, 22, 2, "2024-01-02 03:04:05.12"},
		{"c", querypb.Type_CHAR, 0, utf8mb4, 16, 0, "ab"},
		{"vc", querypb.Type_VARCHAR, 0, utf8mb4, 40, 0, "héllo"},
		{"tx", querypb.Type_TEXT, blob, utf8mb4, 262140, 0, "text"},
		{"bl", querypb.Type_BLOB, blob | binFlag, binCS, 65535, 0, "\x00\xff"},
		{"bn", querypb.Type_BINARY, binFlag, binCS, 3, 0, "ij\x00"},
		{"vb", querypb.Type_VARBINARY, binFlag, binCS, 7, 0, "kl\x00"},
		{"e", querypb.Type_ENUM, flagEnum, utf8mb4, 4, 0, "b"},
		{"s", querypb.Type_SET, flagSet, utf8mb4, 12, 0, "x,y"},
		// MariaDB's JSON is LONGTEXT with a _bin collation: type 252 with
		// BINARY_FLAG and charset utf8mb4, which Vitess maps to BLOB.
		{"j", querypb.Type_BLOB, blob | binFlag, utf8mb4, maxLen, 0, `{"a": [1, "x"]}`},
		{"g", querypb.Type_GEOMETRY, blob | binFlag, binCS, maxLen, 0, wkbPoint(1, 2)},
		{"pt", querypb.Type_GEOMETRY, blob | binFlag, binCS, maxLen, 0, wkbPoint(3, 4)},
		{"lt", querypb.Type_TEXT, blob, utf8mb4, maxLen, 0, "long"},
		{"mb", querypb.Type_BLOB, blob | binFlag, binCS, 16777215, 0, "medium"},
		{"tb", querypb.Type_BLOB, blob | binFlag, binCS, 255, 0, "tiny"},
		// A latin1 column is converted to the connection's utf8mb4.
		{"ct", querypb.Type_CHAR, 0, utf8mb4, 12, 0, "ct"},
		// MariaDB's UUID, INET4 and INET6 are CHAR with BINARY|UNSIGNED: BINARY for Vitess.
		{"uu", querypb.Type_BINARY, binFlag | unsig, utf8mb4, 144, 0, "123e4567-e89b-12d3-a456-426614174000"},
		{"i4", querypb.Type_BINARY, binFlag | unsig, utf8mb4, 60, 0, "1.2.3.4"},
		{"i6", querypb.Type_BINARY, binFlag | unsig, utf8mb4, 156, 0, "::1"},
	}
}

// TestColumnTypes checks, for each column type, the Vitess type and every
// Field attribute vttablet would report against MariaDB 10.11 (ALL), and the
// text value byte for byte, then the same columns holding NULL.
func TestColumnTypes(t *testing.T) {
	tests := columnTypeCases()
	s := mariadbtest.Start(t, mariadbtest.Options{})
	s.Exec(t, "CREATE DATABASE types", allTypesTable, allTypesRow, "INSERT INTO types.t (id) VALUES (2)")
	c := connect(t, s, func(c *Config) { c.DBName = "types" })
	qr := exec(t, c, "select * from t order by id")
	if len(qr.Fields) != len(tests) || len(qr.Rows) != 2 {
		t.Fatalf("%d fields and %d rows, want %d and 2", len(qr.Fields), len(qr.Rows), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.col, func(t *testing.T) {
			f := qr.Fields[i]
			if f.Name != tt.col || f.OrgName != tt.col || f.Table != "t" || f.OrgTable != "t" || f.Database != "types" {
				t.Errorf("names: %v", f)
			}
			if f.Type != tt.typ || f.Flags != tt.flags || f.Charset != tt.charset || f.ColumnLength != tt.length || f.Decimals != tt.decimals {
				t.Errorf("got type %v flags %d charset %d length %d decimals %d\nwant type %v flags %d charset %d length %d decimals %d",
					f.Type, f.Flags, f.Charset, f.ColumnLength, f.Decimals, tt.typ, tt.flags, tt.charset, tt.length, tt.decimals)
			}
			if got := value(qr.Rows[0], i); got != tt.value {
				t.Errorf("value %q, want %q", got, tt.value)
			}
			want := "NULL"
			if i == 0 {
				want = "2"
			}
			if got := value(qr.Rows[1], i); got != want || (i > 0 && qr.Rows[1].Lengths[i] != -1) {
				t.Errorf("second row: %q, want %s", got, want)
			}
		})
	}
}

// TestExpressionTypes covers columns that are not table columns.
func TestExpressionTypes(t *testing.T) {
	s := mariadbtest.Start(t, mariadbtest.Options{})
	c := connect(t, s, nil)
	qr := exec(t, c, "select 1+1, null, 'x', json_object('a', 1), cast(1 as unsigned), 1.5, 1e0, now() > 0, cast('2024-01-02' as date)")
	want := []querypb.Type{querypb.Type_INT32, querypb.Type_NULL_TYPE, querypb.Type_VARCHAR, querypb.Type_VARCHAR,
		querypb.Type_UINT32, querypb.Type_DECIMAL, querypb.Type_FLOAT64, querypb.Type_INT32, querypb.Type_DATE}
	wantValues := []string{"2", "NULL", "x", `{"a": 1}`, "1", "1.5", "1", "1", "2024-01-02"}
	for i, f := range qr.Fields {
		if f.Type != want[i] || value(qr.Rows[0], i) != wantValues[i] {
			t.Errorf("%s: %v %q, want %v %q", f.Name, f.Type, value(qr.Rows[0], i), want[i], wantValues[i])
		}
	}
}
