package mysqlconn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// This file holds the test helpers that build protocol bytes and the fake
// connections unit tests and benchmarks run on.

// packets builds a server response: payloads framed with sequence numbers
// starting at 1 (the answer to a command sent with sequence 0).
type packets struct {
	b   []byte
	seq uint8
}

func newPackets() *packets { return &packets{seq: 1} }

// add frames one payload, splitting it into 16 MiB multi-packets as a server does.
func (p *packets) add(payload []byte) *packets {
	for {
		n := min(len(payload), maxPayload)
		p.b = append(p.b, byte(n), byte(n>>8), byte(n>>16), p.seq)
		p.b = append(p.b, payload[:n]...)
		p.seq++
		payload = payload[n:]
		if n < maxPayload {
			return p
		}
	}
}

func lenEncInt(v uint64) []byte {
	switch {
	case v < 0xfb:
		return []byte{byte(v)}
	case v < 1<<16:
		return []byte{0xfc, byte(v), byte(v >> 8)}
	case v < 1<<24:
		return []byte{0xfd, byte(v), byte(v >> 8), byte(v >> 16)}
	}
	b := []byte{0xfe, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint64(b[1:], v)
	return b
}

func lenEncStr(s string) []byte { return append(lenEncInt(uint64(len(s))), s...) }

// col is a column definition for colDefPacket.
type col struct {
	schema, table, orgTable, name, orgName string
	charset                                uint16
	length                                 uint32
	typ                                    byte
	flags                                  uint16
	decimals                               byte
}

func colDefPacket(c col) []byte {
	var b []byte
	for _, s := range []string{"def", c.schema, c.table, c.orgTable, c.name, c.orgName} {
		b = append(b, lenEncStr(s)...)
	}
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, c.charset)
	b = binary.LittleEndian.AppendUint32(b, c.length)
	b = append(b, c.typ)
	b = binary.LittleEndian.AppendUint16(b, c.flags)
	return append(b, c.decimals, 0, 0)
}

func eofPacket(warnings, status uint16) []byte {
	b := []byte{0xfe}
	b = binary.LittleEndian.AppendUint16(b, warnings)
	return binary.LittleEndian.AppendUint16(b, status)
}

func okPacketBytes(affected, insertID uint64, status, warnings uint16, info string) []byte {
	b := []byte{0}
	b = append(b, lenEncInt(affected)...)
	b = append(b, lenEncInt(insertID)...)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, warnings)
	if info == "" {
		return b
	}
	return append(b, lenEncStr(info)...)
}

func errPacket(num uint16, state, msg string) []byte {
	b := []byte{0xff}
	b = binary.LittleEndian.AppendUint16(b, num)
	b = append(b, '#')
	b = append(b, state...)
	return append(b, msg...)
}

// rowPacket builds a text row; a nil value is NULL.
func rowPacket(vals ...*string) []byte {
	var b []byte
	for _, v := range vals {
		if v == nil {
			b = append(b, nullValue)
			continue
		}
		b = append(b, lenEncStr(*v)...)
	}
	return b
}

func sp(s string) *string { return &s }

// resultSet builds a complete text result set response.
func resultSet(cols []col, rows [][]*string, status uint16) []byte {
	p := newPackets().add(lenEncInt(uint64(len(cols))))
	for _, c := range cols {
		p.add(colDefPacket(c))
	}
	p.add(eofPacket(0, 0))
	for _, r := range rows {
		p.add(rowPacket(r...))
	}
	p.add(eofPacket(0, status))
	return p.b
}

// replayConn is a net.Conn whose every Write (a new command) rewinds the
// response, so a benchmark can run the same statement forever without a
// server. Reads return at most chunk bytes (0: unlimited) to exercise partial
// reads. It records what was written.
type replayConn struct {
	resp    []byte
	pos     int
	chunk   int
	loop    bool // at the end of resp, start again instead of io.EOF
	written bytes.Buffer
	closed  bool
}

func (c *replayConn) Read(b []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	if c.pos == len(c.resp) {
		if !c.loop || len(c.resp) == 0 {
			return 0, io.EOF
		}
		c.pos = 0
	}
	if c.chunk > 0 && len(b) > c.chunk {
		b = b[:c.chunk]
	}
	n := copy(b, c.resp[c.pos:])
	c.pos += n
	return n, nil
}

func (c *replayConn) Write(b []byte) (int, error) {
	if c.closed {
		return 0, net.ErrClosed
	}
	c.written.Write(b)
	c.pos = 0
	return len(b), nil
}

func (c *replayConn) Close() error                     { c.closed = true; return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: "local", Net: "unix"} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Name: "remote", Net: "unix"} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// newReplayConn returns a Conn answering every statement with resp.
func newReplayConn(resp []byte, chunk int) (*Conn, *replayConn) {
	rc := &replayConn{resp: resp, chunk: chunk}
	return newConn(Config{Network: "unix", Address: "/fake", User: "u", QueryInfo: true}.withDefaults(), rc, 7, "5.5.5-10.11.19-MariaDB"), rc
}
