package mysqlconn

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
)

// fuzzTimeout is the caller's deadline in FuzzCorruptServer; fuzzGrace the CancelGrace.
const (
	fuzzTimeout = 100 * time.Millisecond
	fuzzGrace   = 20 * time.Millisecond
)

// FuzzCorruptServer answers a statement with arbitrary bytes, from a server that then hangs
// up (mode bit 0 clear, or bit 2 set) or keeps the connection open and silent (bit 0 set and
// bit 2 clear: the client waits for its deadline, so a quarter of the inputs, not half).
// Whatever it sends, Execute and Stream return (never panic, never hang past the caller's
// deadline and the grace), and a failure that is not the server's own error packet leaves
// the connection closed, so a pool discards it.
func FuzzCorruptServer(f *testing.F) {
	cols := []col{{name: "id", typ: 8, flags: 0}, {name: "v", typ: 253, flags: 0}}
	f.Add(resultSet(cols, [][]*string{{sp("1"), sp("one")}, {sp("2"), nil}}, 0), byte(0))
	f.Add(resultSet(cols, [][]*string{{sp("1"), sp("one")}}, 0), byte(3))
	f.Add(newPackets().add(okPacketBytes(1, 2, 2, 0, "Rows matched: 1")).b, byte(0))
	f.Add(newPackets().add(errPacket(1146, "42S02", "Table 'x' doesn't exist")).b, byte(1))
	f.Add(resultSet(cols, nil, StatusMoreResultsExists), byte(2))
	f.Add([]byte{0xff, 0xff, 0xff, 1, 0x01}, byte(1))                // a 16 MiB packet that never comes
	f.Add([]byte{5, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff}, byte(0)) // column count lenenc out of range
	f.Add([]byte{1, 0, 0, 7, 2}, byte(0))                            // wrong sequence number
	f.Fuzz(func(t *testing.T, resp []byte, mode byte) {
		client, server := net.Pipe()
		defer server.Close()
		hang := mode&1 != 0 && mode&4 == 0
		stream := mode&2 != 0
		written := make(chan int, 1) // bytes of resp the client read (net.Pipe writes are synchronous)
		go func() {
			defer close(written)
			buf := make([]byte, 4096)
			_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := server.Read(buf); err != nil { // the command
				written <- 0
				return
			}
			n, _ := server.Write(resp)
			written <- n
			if hang {
				_, _ = server.Read(buf) // silent until the client closes
			} else {
				_ = server.Close() // hang up: the client sees EOF at once, not at its deadline
			}
		}()
		cfg := Config{Network: "unix", Address: "/fuzz", User: "u", CancelGrace: fuzzGrace}.withDefaults()
		c := newConn(cfg, client, 9, "10.11.19-MariaDB")
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		start := time.Now()
		var err error
		if stream {
			err = c.Stream(ctx, "select 1", FieldsTypeAndName, 1024, func(*querypb.QueryResult) error { return nil })
		} else {
			_, err = c.Execute(ctx, "select 1", 1000, FieldsTypeAndName)
		}
		if took := time.Since(start); took > fuzzTimeout+fuzzGrace+2*time.Second {
			t.Fatalf("returned after %v: past the deadline %v and the grace %v", took, fuzzTimeout, fuzzGrace)
		}
		if err == nil || c.IsClosed() {
			return
		}
		var se *SQLError
		if !errors.As(err, &se) {
			t.Fatalf("an error without an errno (%T: %v)", err, err)
		}
		// Open after an error: the response must have ended at a command boundary — an
		// error packet, or every byte read (a result discarded because of a column type).
		_ = server.SetWriteDeadline(time.Now()) // a Write still blocked returns what was read
		if n := <-written; n != len(resp) && !hasErrorPacket(resp) {
			t.Fatalf("failed (%v) after reading %d of %d bytes, yet the connection stays open: a pool would reuse it mid-response", err, n, len(resp))
		}
	})
}

// hasErrorPacket reports whether a complete packet of resp (framed from its start) is an
// error packet (0xff), which ends a response cleanly.
func hasErrorPacket(resp []byte) bool {
	for len(resp) >= 4 {
		n := int(resp[0]) | int(resp[1])<<8 | int(resp[2])<<16
		if len(resp) < 4+n {
			return false
		}
		if n > 0 && resp[4] == 0xff {
			return true
		}
		resp = resp[4+n:]
	}
	return false
}
