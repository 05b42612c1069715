package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	tidb "github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/tabletd/tabletd/proto/querypb"
)

// TestUnquotedValuesRefused: a value written without quotes must have its type's syntax;
// anything else would be SQL of its own (a statement of another shape, reading tables the
// ACL never saw in the template).
func TestUnquotedValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		typ querypb.Type
		val string
		ok  bool
	}{
		{querypb.Type_INT64, "-42", true},
		{querypb.Type_INT64, "1 union select * from prot", false},
		{querypb.Type_INT64, "", false},
		{querypb.Type_INT64, "1e3", false},
		{querypb.Type_UINT64, "18446744073709551615", true},
		{querypb.Type_UINT64, "-1", false},
		{querypb.Type_YEAR, "2024", true},
		{querypb.Type_FLOAT64, "-1.5e-10", true},
		{querypb.Type_FLOAT64, ".5", true},
		{querypb.Type_FLOAT64, "NaN", false},
		{querypb.Type_FLOAT64, "1e", false},
		{querypb.Type_DECIMAL, "123.450", true},
		{querypb.Type_DECIMAL, "1.2.3", false},
		{querypb.Type_HEXNUM, "0x1F", true},
		{querypb.Type_HEXNUM, "0x", false},
		{querypb.Type_HEXNUM, "0X1F", false}, // an identifier to MySQL
		{querypb.Type_BITNUM, "0B1", false},
		{querypb.Type_HEXNUM, "0x1 or 1", false},
		{querypb.Type_HEXVAL, "x'0aFF'", true},
		{querypb.Type_HEXVAL, "x'0a' or '1'", false},
		{querypb.Type_HEXVAL, "X'0'", false}, // odd digits: MySQL's syntax error
		{querypb.Type_HEXVAL, "x''", true},
		{querypb.Type_BITNUM, "0b101", true},
		{querypb.Type_BITNUM, "0b102", false},
		{querypb.Type_EXPRESSION, "now()", true}, // vtgate's own SQL, as in Vitess
		{querypb.Type(99), "1", false},           // no such type (and no quoting flag)
	} {
		_, err := EncodeValue(nil, &querypb.BindVariable{Type: tc.typ, Value: []byte(tc.val)})
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadBindValue)) {
			t.Errorf("%v %q: %v, want ok=%v", tc.typ, tc.val, err, tc.ok)
		}
		// Inside a tuple the same rule holds.
		tuple := append(append(appendVarint(nil, uint64(tc.typ)), appendVarint(nil, uint64(len(tc.val)))...), tc.val...)
		_, err = EncodeValue(nil, &querypb.BindVariable{Type: querypb.Type_TUPLE, Values: []*querypb.Value{{Type: querypb.Type_TUPLE, Value: tuple}}})
		if (err == nil) != tc.ok {
			t.Errorf("%v %q in a tuple: %v, want ok=%v", tc.typ, tc.val, err, tc.ok)
		}
	}
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// bindTypes are the types FuzzBindVarRoundTrip sends; the first ones are stored and must read
// back byte for byte.
var bindTypes = []querypb.Type{
	querypb.Type_VARBINARY, querypb.Type_BLOB, querypb.Type_BINARY, querypb.Type_VARCHAR, querypb.Type_TEXT,
	querypb.Type_CHAR, querypb.Type_JSON, querypb.Type_INT64, querypb.Type_UINT64, querypb.Type_FLOAT64,
	querypb.Type_DECIMAL, querypb.Type_HEXNUM, querypb.Type_HEXVAL, querypb.Type_BITNUM, querypb.Type_BIT, querypb.Type_NULL_TYPE,
}

// byteExact reports the types whose value is stored as given in a LONGBLOB.
func byteExact(t querypb.Type) bool {
	switch t {
	case querypb.Type_VARBINARY, querypb.Type_BLOB, querypb.Type_BINARY, querypb.Type_VARCHAR, querypb.Type_TEXT, querypb.Type_CHAR:
		return true
	}
	return false
}

// benign is a value of typ that cannot change a statement, for the reference shape; a
// number keeps val's sign (a signed literal is a unary expression in the tree).
func benign(typ querypb.Type, val []byte) string {
	switch typ {
	case querypb.Type_INT64, querypb.Type_UINT64, querypb.Type_FLOAT64, querypb.Type_DECIMAL:
		if len(val) > 0 && (val[0] == '-' || val[0] == '+') {
			return string(val[0]) + "1"
		}
		return "1"
	case querypb.Type_HEXNUM:
		return "0x1"
	case querypb.Type_HEXVAL:
		return "x'01'"
	case querypb.Type_BITNUM:
		return "0b1"
	}
	return "x"
}

// shape is a statement's syntax tree with the literals' values left out: the node types in
// walk order. Two texts of the same shape differ only in their values.
func shape(t *testing.T, sql string) string {
	t.Helper()
	stmts, _, err := tidb.New().ParseSQL(sql)
	if err != nil {
		return "unparsable: " + err.Error()
	}
	var b bytes.Buffer
	for _, st := range stmts {
		st.Accept(&shapeVisitor{&b})
		b.WriteString(";")
	}
	return b.String()
}

type shapeVisitor struct{ b *bytes.Buffer }

func (v *shapeVisitor) Enter(n ast.Node) (ast.Node, bool) {
	v.b.WriteString(reflectName(n))
	v.b.WriteByte(' ')
	return n, false
}

func (v *shapeVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func reflectName(n ast.Node) string { return fmt.Sprintf("%T", n) }

// FuzzBindVarRoundTrip sends arbitrary values of each type through Vitess's literal
// encoding to a real MariaDB: the statement never changes shape (its syntax tree is the one
// the same template gives with a harmless value), MariaDB never finds a syntax error in it, exactly one row is inserted, and a
// string or binary value reads back byte for byte (and matches itself in a WHERE).
func FuzzBindVarRoundTrip(f *testing.F) {
	for _, seed := range []struct {
		typ byte
		val string
	}{
		{0, "plain"}, {0, "\x00\xff\\'\"\n\r\t\x1a"}, {0, `\%\_%_`}, {3, "it's \"quoted\" \\ back"}, {3, "ünïcødé ✓"},
		{4, `\`}, {0, `'); drop table a; --`}, {7, "1 or 1=1"}, {7, "-9223372036854775808"}, {9, "1.5e300"},
		{10, "-0.000001"}, {11, "0xdeadBEEF"}, {12, "x'00ff'"}, {13, "0b1010"}, {14, "\x05"}, {15, ""}, {6, `{"a": [1, "b\\"c"]}`},
	} {
		f.Add(seed.typ, []byte(seed.val))
	}
	db := startFuzzDB(f)
	insert, err := Build("insert into a (id, b) values (:id, :v)")
	if err != nil {
		f.Fatal(err)
	}
	match, err := Build("select count(*) from a where id = :id and b = :v")
	if err != nil {
		f.Fatal(err)
	}
	var nextID atomic.Int64
	nextID.Store(1000)
	f.Fuzz(func(t *testing.T, typIndex byte, val []byte) {
		typ := bindTypes[int(typIndex)%len(bindTypes)]
		id := nextID.Add(1)
		bv := map[string]*querypb.BindVariable{
			"id": {Type: querypb.Type_INT64, Value: []byte(strconv.FormatInt(id, 10))},
			"v":  {Type: typ, Value: val},
		}
		ins, err := insert.Query.GenerateString(bv)
		if err != nil {
			if !errors.Is(err, ErrBadBindValue) {
				t.Fatalf("%v %q: %v", typ, val, err)
			}
			return // refused before any SQL was written
		}
		ref, _ := insert.Query.GenerateString(map[string]*querypb.BindVariable{"id": bv["id"], "v": {Type: typ, Value: []byte(benign(typ, val))}})
		if got, want := shape(t, ins), shape(t, ref); got != want {
			t.Fatalf("%v %q changed the statement's shape:\n%s\ntree %s\nwant %s", typ, val, ins, got, want)
		}
		sel, _ := match.Query.GenerateString(bv)
		selRef, _ := match.Query.GenerateString(map[string]*querypb.BindVariable{"id": bv["id"], "v": {Type: typ, Value: []byte(benign(typ, val))}})
		if got, want := shape(t, sel), shape(t, selRef); got != want {
			t.Fatalf("%v %q changed the statement's shape:\n%s\ntree %s\nwant %s", typ, val, sel, got, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		defer db.ExecContext(ctx, "delete from a where id = ?", id)
		res, err := db.ExecContext(ctx, ins)
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1064 {
			t.Fatalf("%v %q: MariaDB finds a syntax error in %s: %v", typ, val, ins, err)
		}
		if err != nil {
			return // refused by the server for its value (invalid UTF-8, bad JSON, out of range)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%v %q: %d rows inserted by %s", typ, val, n, ins)
		}
		if !byteExact(typ) {
			return
		}
		var back []byte
		if err := db.QueryRowContext(ctx, "select b from a where id = ?", id).Scan(&back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, val) {
			t.Fatalf("%v: inserted %q, read back %q (sent as %s)", typ, val, back, ins)
		}
		var n int
		if err := db.QueryRowContext(ctx, sel).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%v %q: %s matched %d rows (%v), want 1", typ, val, sel, n, err)
		}
	})
}
