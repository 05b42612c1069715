package mysqlconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
)

func TestReadLenEnc(t *testing.T) {
	tests := []struct {
		in     []byte
		want   uint64
		next   int
		wantOK bool
	}{
		{[]byte{0}, 0, 1, true},
		{[]byte{0xfa}, 250, 1, true},
		{[]byte{0xfc, 0x34, 0x12}, 0x1234, 3, true},
		{[]byte{0xfd, 0x56, 0x34, 0x12}, 0x123456, 4, true},
		{[]byte{0xfe, 8, 7, 6, 5, 4, 3, 2, 1}, 0x0102030405060708, 9, true},
		{[]byte{0xfb}, 0, 0, false}, // NULL is not an integer
		{[]byte{0xff}, 0, 0, false},
		{[]byte{0xfc, 1}, 0, 0, false},
		{[]byte{0xfd, 1, 2}, 0, 0, false},
		{[]byte{0xfe, 1, 2, 3, 4, 5, 6, 7}, 0, 0, false},
		{nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%x", tt.in), func(t *testing.T) {
			v, next, ok := readLenEnc(tt.in, 0)
			if ok != tt.wantOK || (ok && (v != tt.want || next != tt.next)) {
				t.Fatalf("got (%d, %d, %v), want (%d, %d, %v)", v, next, ok, tt.want, tt.next, tt.wantOK)
			}
		})
	}
}

func TestParseOK(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    okPacket
		wantErr bool
	}{
		{"plain", okPacketBytes(3, 0, 2, 0, ""), okPacket{affectedRows: 3, status: 2}, false},
		{"insert id and info", okPacketBytes(1, 70000, 3, 1, "Records: 1"), okPacket{1, 70000, 3, 1, []byte("Records: 1")}, false},
		{"info as string<EOF>", append(okPacketBytes(0, 0, 0, 0, ""), "raw"...), okPacket{info: []byte("raw")}, false},
		{"big counters", okPacketBytes(1<<40, 1<<33, 0, 0, ""), okPacket{affectedRows: 1 << 40, insertID: 1 << 33}, false},
		{"truncated status", []byte{0, 1, 0, 2}, okPacket{}, true},
		{"bad affected rows", []byte{0, 0xff}, okPacket{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOK(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (got.affectedRows != tt.want.affectedRows || got.insertID != tt.want.insertID ||
				got.status != tt.want.status || got.warnings != tt.want.warnings || !bytes.Equal(got.info, tt.want.info)) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrorPacket(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want SQLError
	}{
		{"protocol 41", errPacket(1062, "23000", "Duplicate entry '1' for key 'PRIMARY'"),
			SQLError{Num: 1062, State: "23000", Message: "Duplicate entry '1' for key 'PRIMARY'"}},
		{"no sqlstate", []byte{0xff, 0x10, 0x04, 'T', 'o', 'o'}, SQLError{Num: 1040, State: SSUnknownSQLState, Message: "Too"}},
		{"truncated", []byte{0xff, 1}, SQLError{Num: CRMalformedPacket, State: SSUnknownSQLState, Message: "mysqlconn: truncated error packet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErrorPacket(tt.in)
			if got.Num != tt.want.Num || got.State != tt.want.State || got.Message != tt.want.Message {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSQLErrorFormat(t *testing.T) {
	err := error(&SQLError{Num: 1064, State: "42000", Message: "You have an error"})
	if got, want := err.Error(), "You have an error (errno 1064) (sqlstate 42000)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("exec: %w", clientError(CRServerLost, "lost", context.Canceled))
	var se *SQLError
	if !errors.As(wrapped, &se) || se.Num != CRServerLost || !errors.Is(wrapped, context.Canceled) || !IsConnectionError(wrapped) {
		t.Fatalf("client error does not unwrap: %v", wrapped)
	}
	if IsConnectionError(err) {
		t.Fatal("a server error is not a connection error")
	}
}

func TestParseColumnDef(t *testing.T) {
	c := col{schema: "db", table: "t", orgTable: "t0", name: "a", orgName: "a0", charset: 45, length: 40, typ: 253, flags: 1 | 4, decimals: 0}
	tests := []struct {
		detail FieldDetail
		want   *querypb.Field
	}{
		{FieldsTypeAndName, &querypb.Field{Name: "a", Type: querypb.Type_VARCHAR}},
		{FieldsTypeOnly, &querypb.Field{Type: querypb.Type_VARCHAR}},
		{FieldsAll, &querypb.Field{Name: "a", Type: querypb.Type_VARCHAR, Table: "t", OrgTable: "t0", Database: "db",
			OrgName: "a0", ColumnLength: 40, Charset: 45, Flags: 5}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.detail)), func(t *testing.T) {
			conn, _ := newReplayConn(resultSet([]col{c, c}, nil, 0), 0)
			qr, err := conn.Execute(context.Background(), "select", 0, tt.detail)
			if err != nil {
				t.Fatal(err)
			}
			if len(qr.Fields) != 2 || !proto.Equal(qr.Fields[0], tt.want) || !proto.Equal(qr.Fields[1], tt.want) {
				t.Fatalf("got %v, want 2 × %v", qr.Fields, tt.want)
			}
		})
	}
}

func TestFillFieldNumFlag(t *testing.T) {
	tests := []struct {
		cd        columnDef
		wantFlags uint32
	}{
		{columnDef{mysqlType: 3, flags: 32, length: 10}, 32 | flagNum},
		{columnDef{mysqlType: 7, flags: 128, length: 19}, 128}, // TIMESTAMP is not numeric
		{columnDef{mysqlType: 6, flags: 128, charset: 63}, 128 | flagNum},
		{columnDef{mysqlType: 13, flags: 96, length: 4}, 96 | flagNum},
		{columnDef{mysqlType: 246, length: 12}, flagNum},
		{columnDef{mysqlType: 253, flags: 1, length: 4, charset: 45}, 1},
		{columnDef{mysqlType: 3, flags: 32}, 0}, // no length, no charset: flags dropped, as Vitess
	}
	for _, tt := range tests {
		var f querypb.Field
		fillField(&f, tt.cd, FieldsAll)
		if f.Flags != tt.wantFlags {
			t.Errorf("%+v: flags %d, want %d", tt.cd, f.Flags, tt.wantFlags)
		}
	}
}

func TestParseRow(t *testing.T) {
	long := string(bytes.Repeat([]byte("z"), 300)) // 2-byte length prefix
	tests := []struct {
		name        string
		vals        []*string
		wantLengths []int64
		wantValues  string
	}{
		{"vitess example", []*string{sp("1"), nil, sp("ab")}, []int64{1, -1, 2}, "1ab"},
		{"all null", []*string{nil, nil}, []int64{-1, -1}, ""},
		{"empty strings", []*string{sp(""), sp("")}, []int64{0, 0}, ""},
		{"long value", []*string{sp(long), sp("x")}, []int64{300, 1}, long + "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b rowBuffer
			if err := b.add(rowPacket(tt.vals...), len(tt.vals)); err != nil {
				t.Fatal(err)
			}
			rows := b.appendTo(nil)
			want := &querypb.Row{Lengths: tt.wantLengths, Values: []byte(tt.wantValues)}
			if len(rows) != 1 || !proto.Equal(rows[0], want) {
				t.Fatalf("got %v, want %v", rows, want)
			}
		})
	}
}

func TestParseRowMalformed(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		ncols int
	}{
		{"too few values", rowPacket(sp("a")), 2},
		{"trailing bytes", append(rowPacket(sp("a")), 'x'), 1},
		{"length beyond packet", []byte{5, 'a'}, 1},
		{"empty packet", nil, 1},
		{"bad length prefix", []byte{0xff}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b rowBuffer
			err := b.add(tt.data, tt.ncols)
			var pe *protocolError
			if !errors.As(err, &pe) || pe.num != CRMalformedPacket {
				t.Fatalf("got %v, want a malformed packet error", err)
			}
		})
	}
}

// TestRowBuffer builds rows in several materializations and as views, and
// checks every row keeps its values and has no spare capacity to overwrite
// its neighbour through.
func TestRowBuffer(t *testing.T) {
	val := func(i int) string { return strconv.Itoa(i) + string(bytes.Repeat([]byte{'v'}, i%700)) }
	check := func(t *testing.T, rows []*querypb.Row) {
		t.Helper()
		for i, row := range rows {
			v := val(i)
			if string(row.Values) != v || len(row.Lengths) != 2 || row.Lengths[0] != int64(len(v)) || row.Lengths[1] != -1 {
				t.Fatalf("row %d = %v", i, row)
			}
			if cap(row.Values) != len(row.Values) || cap(row.Lengths) != 2 {
				t.Fatalf("row %d: spare capacity (%d/%d)", i, cap(row.Values), cap(row.Lengths))
			}
		}
	}
	t.Run("materialized", func(t *testing.T) {
		var b rowBuffer
		var rows []*querypb.Row
		for i := range 5000 {
			if err := b.add(rowPacket(sp(val(i)), nil), 2); err != nil {
				t.Fatal(err)
			}
			if i%1000 == 999 { // as Execute does when the buffer is full
				rows = b.appendTo(rows)
			}
		}
		rows = b.appendTo(rows)
		b.add(rowPacket(sp("reused"), nil), 2) // the scratch is reused: rows must not alias it
		check(t, rows)
	})
	t.Run("views", func(t *testing.T) {
		var b rowBuffer
		var rows []*querypb.Row
		for i := range 300 {
			if err := b.add(rowPacket(sp(val(i)), nil), 2); err != nil {
				t.Fatal(err)
			}
		}
		check(t, b.view(rows))
	})
}
