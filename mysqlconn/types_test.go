package mysqlconn

import (
	"fmt"
	"testing"

	"github.com/tabletd/tabletd/proto/querypb"
)

// TestMySQLToType is Vitess's go/sqltypes/type.go mapping, case by case.
func TestMySQLToType(t *testing.T) {
	const (
		unsigned = flagUnsigned
		binary   = flagBinary
		enum     = flagEnum
		set      = flagSet
	)
	tests := []struct {
		mysqlType byte
		flags     uint16
		want      querypb.Type
	}{
		{0, 0, querypb.Type_DECIMAL},
		{246, 0, querypb.Type_DECIMAL},
		{246, unsigned, querypb.Type_DECIMAL},
		{1, 0, querypb.Type_INT8},
		{1, unsigned, querypb.Type_UINT8},
		{2, 0, querypb.Type_INT16},
		{2, unsigned, querypb.Type_UINT16},
		{3, 0, querypb.Type_INT32},
		{3, unsigned, querypb.Type_UINT32},
		{9, 0, querypb.Type_INT24},
		{9, unsigned, querypb.Type_UINT24},
		{8, 0, querypb.Type_INT64},
		{8, unsigned | binary, querypb.Type_UINT64},
		{4, 0, querypb.Type_FLOAT32},
		{4, unsigned, querypb.Type_FLOAT32},
		{5, 0, querypb.Type_FLOAT64},
		{6, binary, querypb.Type_NULL_TYPE},
		{7, binary | unsigned, querypb.Type_TIMESTAMP},
		{17, 0, querypb.Type_TIMESTAMP},
		{10, binary, querypb.Type_DATE},
		{11, binary, querypb.Type_TIME},
		{19, 0, querypb.Type_TIME},
		{12, binary, querypb.Type_DATETIME},
		{18, 0, querypb.Type_DATETIME},
		{13, unsigned | 64, querypb.Type_YEAR},
		{15, 0, querypb.Type_VARCHAR},
		{15, binary, querypb.Type_VARBINARY},
		{253, 0, querypb.Type_VARCHAR},
		{253, binary, querypb.Type_VARBINARY},
		{16, unsigned, querypb.Type_BIT},
		{242, binary, querypb.Type_VECTOR},
		{245, binary, querypb.Type_JSON},
		{247, 0, querypb.Type_ENUM},
		{248, 0, querypb.Type_SET},
		{249, 0, querypb.Type_TEXT},
		{250, 0, querypb.Type_TEXT},
		{251, 0, querypb.Type_TEXT},
		{252, 16, querypb.Type_TEXT},
		{249, binary, querypb.Type_BLOB},
		{252, 16 | binary, querypb.Type_BLOB}, // MariaDB sends JSON columns like this
		{254, 0, querypb.Type_CHAR},
		{254, binary, querypb.Type_BINARY},
		{254, binary | unsigned, querypb.Type_BINARY}, // MariaDB UUID/INET4/INET6
		{254, enum, querypb.Type_ENUM},
		{254, set, querypb.Type_SET},
		{254, binary | enum, querypb.Type_BINARY},
		{254, enum | set, querypb.Type_ENUM},
		{255, binary | 16, querypb.Type_GEOMETRY},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%d", tt.mysqlType, tt.flags), func(t *testing.T) {
			got, err := MySQLToType(tt.mysqlType, tt.flags)
			if err != nil || got != tt.want {
				t.Fatalf("MySQLToType(%d, %d) = %v, %v; want %v", tt.mysqlType, tt.flags, got, err, tt.want)
			}
		})
	}
}

func TestMySQLToTypeUnknown(t *testing.T) {
	for _, typ := range []byte{14, 20, 100, 241, 243, 244} {
		if got, err := MySQLToType(typ, 0); err == nil {
			t.Errorf("MySQLToType(%d) = %v, want an error", typ, got)
		}
	}
}
