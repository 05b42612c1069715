package mysqlconn

import (
	"errors"
	"fmt"
	"io"
	"net"
)

const (
	// maxPayload is the largest payload of one packet; a payload of exactly
	// this length is continued in the next packet (16 MiB multi-packets).
	maxPayload = 1<<24 - 1
	// readBufferSize is the initial and steady-state read buffer: large enough
	// that a typical result arrives in one or a few read calls.
	readBufferSize = 32 << 10
	// maxKeptBuffer bounds the read and write buffers kept between statements;
	// a statement that needed more (a huge row or query) releases them after.
	maxKeptBuffer = 1 << 20
)

// protocolError is a packet that breaks the protocol (bad sequence number,
// truncated or malformed content). The connection cannot be trusted after it.
type protocolError struct {
	num uint16 // CRMalformedPacket or CRCommandsOutOfSync
	msg string
}

func (e *protocolError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &protocolError{num: CRMalformedPacket, msg: fmt.Sprintf(format, args...)}
}

// wire frames MySQL packets on a net.Conn after the handshake. It reads
// through its own buffer and returns payloads that alias that buffer (valid
// until the next read), so reading a packet copies nothing and allocates
// nothing once the buffer has its steady-state size.
type wire struct {
	conn net.Conn
	buf  []byte // read buffer; buf[r:w] is received and not yet consumed
	r, w int
	seq  uint8  // sequence number expected on the next packet read
	big  []byte // reassembly buffer for payloads of 16 MiB and more
	wbuf []byte // write buffer, reused between commands
}

func newWire(conn net.Conn) wire {
	return wire{conn: conn, buf: make([]byte, readBufferSize)}
}

// readPacket returns the next payload, reassembling multi-packet payloads.
// The slice is only valid until the next call.
func (p *wire) readPacket() ([]byte, error) {
	data, err := p.readFrame()
	if err != nil || len(data) < maxPayload {
		return data, err
	}
	p.big = append(p.big[:0], data...)
	for {
		data, err = p.readFrame()
		if err != nil {
			return nil, err
		}
		p.big = append(p.big, data...)
		if len(data) < maxPayload {
			return p.big, nil
		}
	}
}

// readFrame reads one packet (header and payload) and checks its sequence number.
func (p *wire) readFrame() ([]byte, error) {
	if err := p.fill(4); err != nil {
		return nil, err
	}
	h := p.buf[p.r : p.r+4]
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if h[3] != p.seq {
		return nil, &protocolError{num: CRCommandsOutOfSync,
			msg: fmt.Sprintf("packet sequence number %d, expected %d", h[3], p.seq)}
	}
	p.seq++
	if err := p.fill(4 + n); err != nil {
		return nil, err
	}
	data := p.buf[p.r+4 : p.r+4+n : p.r+4+n]
	p.r += 4 + n
	return data, nil
}

// fill makes at least need bytes available in buf[r:w], compacting or growing
// the buffer when the packet does not fit behind r.
func (p *wire) fill(need int) error {
	if p.w-p.r >= need {
		return nil
	}
	if p.r == p.w {
		p.r, p.w = 0, 0 // empty: read into the whole buffer
	}
	if need > len(p.buf)-p.r {
		dst := p.buf
		if need > len(p.buf) {
			dst = make([]byte, max(need, 2*len(p.buf)))
		}
		p.w = copy(dst, p.buf[p.r:p.w])
		p.r = 0
		p.buf = dst
	}
	for p.w-p.r < need {
		n, err := p.conn.Read(p.buf[p.w:])
		p.w += n
		if err != nil {
			if p.w-p.r >= need {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// writeCommand sends one command packet (sequence 0): cmd followed by arg.
func (p *wire) writeCommand(cmd byte, arg string) error {
	n := 1 + len(arg)
	if n >= maxPayload {
		return p.writeLarge(cmd, arg)
	}
	b := p.wbuf[:0]
	b = append(b, byte(n), byte(n>>8), byte(n>>16), 0, cmd)
	b = append(b, arg...)
	p.wbuf = b
	p.seq = 1
	_, err := p.conn.Write(b)
	return err
}

// writeLarge sends a command of 16 MiB or more as a multi-packet: frames of
// maxPayload bytes and a last shorter (possibly empty) one.
func (p *wire) writeLarge(cmd byte, arg string) error {
	payload := make([]byte, 1+len(arg))
	payload[0] = cmd
	copy(payload[1:], arg)
	var seq uint8
	for {
		chunk := payload[:min(len(payload), maxPayload)]
		payload = payload[len(chunk):]
		n := len(chunk)
		bufs := net.Buffers{{byte(n), byte(n >> 8), byte(n >> 16), seq}, chunk}
		seq++
		if _, err := bufs.WriteTo(p.conn); err != nil {
			return err
		}
		if n < maxPayload {
			p.seq = seq
			return nil
		}
	}
}

// release drops buffers a huge packet or query grew beyond maxKeptBuffer.
// Called between statements, when no packet is held by the caller.
func (p *wire) release() {
	if len(p.buf) > maxKeptBuffer && p.w-p.r <= readBufferSize {
		nb := make([]byte, readBufferSize)
		p.w = copy(nb, p.buf[p.r:p.w])
		p.r = 0
		p.buf = nb
	}
	if cap(p.big) > maxKeptBuffer {
		p.big = nil
	}
	if cap(p.wbuf) > maxKeptBuffer {
		p.wbuf = nil
	}
}
