package mysqlconn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tabletd/tabletd/proto/querypb"
)

// These tests run Execute and Stream against scripted server responses.

var twoCols = []col{
	{name: "id", typ: 3, flags: 1 | 2, length: 11, charset: 63},
	{name: "v", typ: 253, length: 40, charset: 45},
}

func TestExecuteResults(t *testing.T) {
	tests := []struct {
		name         string
		resp         []byte
		maxRows      int
		want         *querypb.QueryResult
		wantWarnings uint16
		wantStatus   uint16
	}{
		{
			name: "ok packet",
			resp: newPackets().add(okPacketBytes(3, 42, StatusAutocommit, 2, "Records: 3  Duplicates: 0  Warnings: 2")).b,
			want: &querypb.QueryResult{RowsAffected: 3, InsertId: 42, InsertIdChanged: true,
				Info: "Records: 3  Duplicates: 0  Warnings: 2"},
			wantWarnings: 2, wantStatus: StatusAutocommit,
		},
		{
			name: "rows",
			resp: resultSet(twoCols, [][]*string{{sp("1"), sp("a")}, {sp("2"), nil}}, StatusInTrans),
			want: &querypb.QueryResult{
				Fields: []*querypb.Field{{Name: "id", Type: querypb.Type_INT32}, {Name: "v", Type: querypb.Type_VARCHAR}},
				Rows: []*querypb.Row{
					{Lengths: []int64{1, 1}, Values: []byte("1a")},
					{Lengths: []int64{1, -1}, Values: []byte("2")},
				},
			},
			wantStatus: StatusInTrans,
		},
		{
			name:    "rows at the limit",
			resp:    resultSet(twoCols, [][]*string{{sp("1"), sp("a")}}, 0),
			maxRows: 1,
			want: &querypb.QueryResult{
				Fields: []*querypb.Field{{Name: "id", Type: querypb.Type_INT32}, {Name: "v", Type: querypb.Type_VARCHAR}},
				Rows:   []*querypb.Row{{Lengths: []int64{1, 1}, Values: []byte("1a")}},
			},
		},
		{
			name: "empty result set",
			resp: resultSet(twoCols, nil, 0),
			want: &querypb.QueryResult{
				Fields: []*querypb.Field{{Name: "id", Type: querypb.Type_INT32}, {Name: "v", Type: querypb.Type_VARCHAR}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rc := newReplayConn(tt.resp, 3)
			qr, err := c.Execute(context.Background(), "select 1", tt.maxRows, FieldsTypeAndName)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(qr, tt.want) {
				t.Fatalf("got %v\nwant %v", qr, tt.want)
			}
			if c.LastWarnings() != tt.wantWarnings || c.LastStatusFlags() != tt.wantStatus {
				t.Errorf("warnings/status = %d/%d, want %d/%d", c.LastWarnings(), c.LastStatusFlags(), tt.wantWarnings, tt.wantStatus)
			}
			if got := rc.written.Bytes(); !bytes.Equal(got, []byte{9, 0, 0, 0, comQuery, 's', 'e', 'l', 'e', 'c', 't', ' ', '1'}) {
				t.Errorf("wrote %q", got)
			}
		})
	}
}

func TestExecuteErrors(t *testing.T) {
	many := [][]*string{{sp("1"), sp("a")}, {sp("2"), sp("b")}, {sp("3"), sp("c")}}
	// A second result continues the sequence numbers: the first one used 1-8.
	tests := []struct {
		name       string
		resp       []byte
		maxRows    int
		wantIs     []error
		wantNum    uint16 // 0: no SQLError expected
		wantClosed bool
	}{
		{"server error", newPackets().add(errPacket(1064, "42000", "syntax")).b, 0, nil, 1064, false},
		{"rows exceeded", resultSet(twoCols, many, 0), 2, []error{ErrRowsExceeded}, 0, false},
		{"multiple results", append(resultSet(twoCols, many, StatusMoreResultsExists),
			framed(9, okPacketBytes(0, 0, 0, 0, ""))...), 0, []error{ErrMultipleResults}, 0, false},
		{"multiple results, later error", append(resultSet(twoCols, many, StatusMoreResultsExists),
			framed(9, errPacket(1146, "42S02", "no table"))...), 0, []error{ErrMultipleResults}, 1146, false},
		{"rows exceeded and more results", append(resultSet(twoCols, many, StatusMoreResultsExists),
			framed(9, okPacketBytes(0, 0, 0, 0, ""))...), 1, []error{ErrRowsExceeded}, 0, false},
		{"error in the middle of rows", append(newPackets().add([]byte{1}).add(colDefPacket(twoCols[0])).add(eofPacket(0, 0)).
			add(rowPacket(sp("1"))).b, framed(5, errPacket(1317, "70100", "Query execution was interrupted"))...),
			0, nil, ERQueryInterrupted, false},
		{"unknown column type", resultSet([]col{{name: "x", typ: 14}}, [][]*string{{sp("1")}}, 0), 0, nil, CRMalformedPacket, false},
		{"truncated row", newPackets().add([]byte{1}).add(colDefPacket(twoCols[0])).add(eofPacket(0, 0)).add([]byte{5, '1'}).b,
			0, nil, CRMalformedPacket, true},
		{"connection lost", newPackets().add([]byte{1}).add(colDefPacket(twoCols[0])).b, 0, nil, CRServerLost, true},
		{"no answer", nil, 0, nil, CRServerLost, true},
		{"local infile request", newPackets().add([]byte{0xfb, 'f'}).b, 0, nil, CRMalformedPacket, true},
		{"bad column count", newPackets().add([]byte{0xfc, 1}).b, 0, nil, CRMalformedPacket, true},
		{"missing EOF after fields", newPackets().add([]byte{1}).add(colDefPacket(twoCols[0])).add(rowPacket(sp("1"))).b,
			0, nil, CRMalformedPacket, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newReplayConn(tt.resp, 0)
			_, err := c.Execute(context.Background(), "q", tt.maxRows, FieldsAll)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("%v: not %v", err, want)
				}
			}
			var se *SQLError
			if tt.wantNum != 0 && (!errors.As(err, &se) || se.Num != tt.wantNum) {
				t.Errorf("%v: want errno %d", err, tt.wantNum)
			}
			if c.IsClosed() != tt.wantClosed {
				t.Fatalf("IsClosed = %v, want %v", c.IsClosed(), tt.wantClosed)
			}
			if !tt.wantClosed {
				// The whole response was consumed: the connection is in sync.
				if c.w.r != c.w.w {
					t.Fatalf("%d bytes of the response left unread", c.w.w-c.w.r)
				}
				return
			}
			if _, err := c.Execute(context.Background(), "q", 0, FieldsAll); !errors.As(err, &se) || se.Num != CRServerGone {
				t.Fatalf("Execute after close: %v, want errno %d", err, CRServerGone)
			}
		})
	}
}

// framed frames one payload with sequence number seq.
func framed(seq uint8, payload []byte) []byte {
	p := &packets{seq: seq}
	return p.add(payload).b
}

func TestExecuteBadInput(t *testing.T) {
	c, rc := newReplayConn(resultSet(twoCols, nil, 0), 0)
	if _, err := c.Execute(context.Background(), "q", 0, FieldDetail(7)); err == nil {
		t.Fatal("unknown FieldDetail accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Execute(ctx, "q", 0, FieldsAll); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
	if err := c.Stream(context.Background(), "q", FieldsAll, 0, nil); err == nil {
		t.Fatal("Stream accepted a nil send")
	}
	if rc.written.Len() != 0 || c.IsClosed() {
		t.Fatal("a statement with a done ctx was sent or closed the connection")
	}
}

func TestStream(t *testing.T) {
	var rows [][]*string
	for i := range 1000 {
		rows = append(rows, []*string{sp(strconv.Itoa(i)), sp("value-" + strconv.Itoa(i))})
	}
	tests := []struct {
		name       string
		fields     FieldDetail
		bufferSize int
	}{
		{"small batches", FieldsTypeAndName, 1000},
		{"one batch", FieldsAll, 1 << 20},
		{"no fields message", FieldsNone, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newReplayConn(resultSet(twoCols, rows, 0), 100)
			var got []string
			var msgs []*querypb.QueryResult
			err := c.Stream(context.Background(), "q", tt.fields, tt.bufferSize, func(qr *querypb.QueryResult) error {
				msgs = append(msgs, proto.Clone(qr).(*querypb.QueryResult))
				for _, r := range qr.Rows {
					got = append(got, string(r.Values))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantMsgs := expectedBatches(rows, tt.bufferSize) + 1
			if tt.fields == FieldsNone {
				wantMsgs--
			} else if len(msgs[0].Fields) != 2 || len(msgs[0].Rows) != 0 {
				t.Fatalf("first message %v is not the fields", msgs[0])
			}
			if len(msgs) != wantMsgs {
				t.Fatalf("%d messages, want %d", len(msgs), wantMsgs)
			}
			for i, r := range rows {
				if want := *r[0] + *r[1]; got[i] != want {
					t.Fatalf("row %d = %q, want %q", i, got[i], want)
				}
			}
		})
	}
}

func TestStreamOK(t *testing.T) {
	c, _ := newReplayConn(newPackets().add(okPacketBytes(5, 0, 0, 0, "")).b, 0)
	var got []*querypb.QueryResult
	err := c.Stream(context.Background(), "update", FieldsAll, 0, func(qr *querypb.QueryResult) error {
		got = append(got, qr)
		return nil
	})
	if err != nil || len(got) != 1 || got[0].RowsAffected != 5 {
		t.Fatalf("got %v, %v; want one message with rows_affected 5", got, err)
	}
}

func TestStreamSendError(t *testing.T) {
	errSend := errors.New("client went away")
	short := make([][]*string, 100)
	long := make([][]*string, 20000) // ~2 MiB of values: more than Stream drains
	for _, rows := range [][][]*string{short, long} {
		for i := range rows {
			rows[i] = []*string{sp(strconv.Itoa(i)), sp(string(bytes.Repeat([]byte{'x'}, 100)))}
		}
	}
	tests := []struct {
		name       string
		rows       [][]*string
		failAt     int // message number whose send fails
		wantClosed bool
	}{
		{"fields message, short result", short, 0, false},
		{"first batch, short result", short, 1, false},
		{"fields message, long result", long, 0, true},
		{"first batch, long result", long, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newReplayConn(resultSet(twoCols, tt.rows, 0), 0)
			n := 0
			err := c.Stream(context.Background(), "q", FieldsAll, 1000, func(*querypb.QueryResult) error {
				n++
				if n-1 == tt.failAt {
					return errSend
				}
				return nil
			})
			if !errors.Is(err, errSend) {
				t.Fatalf("got %v, want the send error", err)
			}
			if c.IsClosed() != tt.wantClosed {
				t.Fatalf("IsClosed = %v, want %v", c.IsClosed(), tt.wantClosed)
			}
			if !tt.wantClosed && c.w.r != c.w.w {
				t.Fatalf("connection not drained: %d bytes left", c.w.w-c.w.r)
			}
		})
	}
}

// TestCancelGrace runs a statement on a pipe whose server side reads the
// query and then either answers with ERR 1317 once the statement's ctx is
// cancelled (as after KILL QUERY) or never answers.
func TestCancelGrace(t *testing.T) {
	tests := []struct {
		name       string
		answer     bool
		wantNum    uint16
		wantClosed bool
	}{
		{"server ends the statement", true, ERQueryInterrupted, false},
		{"server does not answer", false, CRServerLost, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			cfg := Config{Network: "unix", Address: "/fake", User: "u", CancelGrace: 50 * time.Millisecond}.withDefaults()
			c := newConn(cfg, client, 1, "10.11")
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 64)
				if _, err := server.Read(buf); err != nil {
					return
				}
				cancel()
				if tt.answer {
					_, _ = server.Write(framed(1, errPacket(1317, "70100", "Query execution was interrupted")))
				}
			}()
			begin := time.Now()
			_, err := c.Execute(ctx, "select sleep(100)", 0, FieldsAll)
			<-done
			var se *SQLError
			if !errors.As(err, &se) || se.Num != tt.wantNum {
				t.Fatalf("got %v, want errno %d", err, tt.wantNum)
			}
			if c.IsClosed() != tt.wantClosed {
				t.Fatalf("IsClosed = %v, want %v", c.IsClosed(), tt.wantClosed)
			}
			if tt.wantClosed && !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
			if elapsed := time.Since(begin); elapsed > 2*time.Second {
				t.Errorf("returned after %v", elapsed)
			}
			if !tt.wantClosed {
				// The deadline set by the cancellation is gone: a slow answer is still read.
				go func() {
					buf := make([]byte, 64)
					if _, err := server.Read(buf); err == nil {
						time.Sleep(100 * time.Millisecond)
						_, _ = server.Write(framed(1, okPacketBytes(0, 0, 0, 0, "")))
					}
				}()
				if _, err := c.Execute(context.Background(), "do 1", 0, FieldsAll); err != nil {
					t.Fatalf("next statement: %v", err)
				}
			}
		})
	}
}

// expectedBatches is how many row batches Stream sends: one each time the
// value bytes reach bufferSize, plus a last partial one.
func expectedBatches(rows [][]*string, bufferSize int) int {
	n, size := 0, 0
	for _, r := range rows {
		for _, v := range r {
			if v != nil {
				size += len(*v)
			}
		}
		if size >= bufferSize {
			n, size = n+1, 0
		}
	}
	if size > 0 {
		n++
	}
	return n
}
