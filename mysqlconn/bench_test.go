package mysqlconn

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/packet"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/test/mariadbtest"
)

// benchCols is a typical table: int pk, varchar, decimal, datetime, nullable text.
var benchCols = []col{
	{schema: "vt_commerce", table: "orders", orgTable: "orders", name: "id", orgName: "id", typ: 8, flags: 1 | 2 | 32 | 512, length: 20, charset: 63},
	{schema: "vt_commerce", table: "orders", orgTable: "orders", name: "customer", orgName: "customer", typ: 253, length: 128, charset: 45},
	{schema: "vt_commerce", table: "orders", orgTable: "orders", name: "amount", orgName: "amount", typ: 246, length: 12, decimals: 2, charset: 63},
	{schema: "vt_commerce", table: "orders", orgTable: "orders", name: "created", orgName: "created", typ: 12, flags: 128, length: 19, charset: 63},
	{schema: "vt_commerce", table: "orders", orgTable: "orders", name: "note", orgName: "note", typ: 252, flags: 16, length: 262140, charset: 45},
}

func benchRows(n int) [][]*string {
	rows := make([][]*string, n)
	for i := range rows {
		var note *string
		if i%3 == 0 {
			note = sp("deliver to the back door, ring twice")
		}
		rows[i] = []*string{sp(strconv.Itoa(100000 + i)), sp("customer-" + strconv.Itoa(i)), sp("1234.50"),
			sp("2024-06-01 12:34:56"), note}
	}
	return rows
}

// BenchmarkParseResult measures Execute on a 100-row result (and a 1-row
// one) replayed from memory: packet framing, fields, rows, no network.
func BenchmarkParseResult(b *testing.B) {
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	tests := []struct {
		name   string
		rows   int
		fields FieldDetail
		ctx    context.Context
	}{
		{"100rows", 100, FieldsTypeAndName, context.Background()},
		{"100rows/fields-all", 100, FieldsAll, context.Background()},
		{"100rows/cancelable-ctx", 100, FieldsTypeAndName, cancelable},
		{"1row", 1, FieldsTypeAndName, context.Background()},
		{"1row/cancelable-ctx", 1, FieldsTypeAndName, cancelable},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			resp := resultSet(benchCols, benchRows(tt.rows), StatusAutocommit)
			c, _ := newReplayConn(resp, 0)
			b.SetBytes(int64(len(resp)))
			b.ReportAllocs()
			for b.Loop() {
				qr, err := c.Execute(tt.ctx, "select * from orders", 0, tt.fields)
				if err != nil || len(qr.Rows) != tt.rows {
					b.Fatalf("%v, %d rows", err, len(qr.Rows))
				}
			}
		})
	}
}

// BenchmarkReadPackets compares reading the packets of a 100-row result with
// our framing (wire) and with go-mysql's packet.Conn (ReadPacketReuseMem into
// a reused buffer, its cheapest call).
func BenchmarkReadPackets(b *testing.B) {
	p := newPackets().add(lenEncInt(uint64(len(benchCols))))
	for _, c := range benchCols {
		p.add(colDefPacket(c))
	}
	p.add(eofPacket(0, 0))
	for _, r := range benchRows(100) {
		p.add(rowPacket(r...))
	}
	p.add(eofPacket(0, 0))
	npackets := int(p.seq) - 1
	b.Run("wire", func(b *testing.B) {
		w := newWire(&replayConn{resp: p.b, loop: true})
		b.SetBytes(int64(len(p.b)))
		b.ReportAllocs()
		for b.Loop() {
			w.seq = 1
			for range npackets {
				if _, err := w.readPacket(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("go-mysql", func(b *testing.B) {
		pc := packet.NewBufferedConn(&replayConn{resp: p.b, loop: true}, 64<<10)
		var buf []byte
		var err error
		b.SetBytes(int64(len(p.b)))
		b.ReportAllocs()
		for b.Loop() {
			pc.Sequence = 1
			for range npackets {
				if buf, err = pc.ReadPacketReuseMem(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkStream measures streaming a 10k-row result from memory in 32 KiB batches.
func BenchmarkStream(b *testing.B) {
	resp := resultSet(benchCols, benchRows(10000), 0)
	c, _ := newReplayConn(resp, 0)
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for b.Loop() {
		if err := c.Stream(ctx, "select * from orders", FieldsTypeAndName, 0, discard); err != nil {
			b.Fatal(err)
		}
	}
}

func discard(*querypb.QueryResult) error { return nil }

// BenchmarkExecutePointSelect runs a primary-key point select on a 1k-row
// sysbench-like table of a real mariadbd over its unix socket (tabletd's usual
// way to its server) and a 100-row range select,
// and compares with go-mysql's client, whose results (pooled, returned with
// Close) are not yet Vitess types.
func BenchmarkExecutePointSelect(b *testing.B) {
	s := mariadbtest.Start(b, mariadbtest.Options{})
	s.Exec(b, "CREATE DATABASE bench", "USE bench",
		"CREATE TABLE sbtest (id int NOT NULL PRIMARY KEY, k int NOT NULL, c char(120) NOT NULL, pad char(60) NOT NULL)",
		"INSERT INTO sbtest SELECT seq, seq * 7 % 1000, repeat(md5(seq), 3), repeat(sha1(seq), 1) FROM seq_1_to_1000")
	point := make([]string, 1000)
	ranges := make([]string, 900)
	for i := range point {
		point[i] = "SELECT id, k, c, pad FROM sbtest WHERE id = " + strconv.Itoa(i+1)
	}
	for i := range ranges {
		ranges[i] = "SELECT id, k, c, pad FROM sbtest WHERE id BETWEEN " + strconv.Itoa(i+1) + " AND " + strconv.Itoa(i+100)
	}
	cancelable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name    string
		ctx     context.Context
		queries []string
		rows    int
	}{
		{"mysqlconn", context.Background(), point, 1},
		{"mysqlconn/cancelable-ctx", cancelable, point, 1},
		{"mysqlconn/100rows", context.Background(), ranges, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := connect(b, s, func(c *Config) { c.Network, c.Address, c.DBName = "unix", s.Socket, "bench" })
			b.ReportAllocs()
			cpu := processCPU()
			i := 0
			for b.Loop() {
				qr, err := c.Execute(bc.ctx, bc.queries[i%len(bc.queries)], 0, FieldsTypeAndName)
				if err != nil || len(qr.Rows) != bc.rows {
					b.Fatalf("%v", err)
				}
				i++
			}
			reportCPU(b, cpu)
		})
	}
	for _, bc := range []struct {
		name    string
		queries []string
		rows    int
	}{{"go-mysql-client", point, 1}, {"go-mysql-client/100rows", ranges, 100}} {
		b.Run(bc.name, func(b *testing.B) {
			gc, err := client.Connect(s.Socket, mariadbtest.UserDBA, mariadbtest.Password, "bench")
			if err != nil {
				b.Fatal(err)
			}
			defer gc.Close()
			b.ReportAllocs()
			cpu := processCPU()
			i := 0
			for b.Loop() {
				r, err := gc.Execute(bc.queries[i%len(bc.queries)])
				if err != nil || r.RowNumber() != bc.rows {
					b.Fatalf("%v", err)
				}
				r.Close()
				i++
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports this process's CPU time per operation since start: the
// client-side cost of a query, which unlike ns/op does not include waiting
// for mariadbd (nor depend much on other load on the machine).
func reportCPU(b *testing.B, start time.Duration) {
	if used := processCPU() - start; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
