package mysqlconn

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestReadPacket(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), 5000)        // 40000 bytes: larger than the read buffer
	huge := bytes.Repeat([]byte{0x5a}, maxPayload+10)    // a 2-frame multi-packet
	exact := bytes.Repeat([]byte{0x33}, maxPayload)      // 2 frames, the second empty
	double := bytes.Repeat([]byte{0x44}, 2*maxPayload+1) // 3 frames
	tests := []struct {
		name     string
		payloads [][]byte
		chunk    int
	}{
		{"one small", [][]byte{[]byte("hello")}, 0},
		{"empty payload", [][]byte{{}}, 0},
		{"many in one read", [][]byte{[]byte("a"), []byte("bc"), []byte("def")}, 0},
		{"one byte per read", [][]byte{[]byte("abc"), []byte("defg")}, 1},
		{"larger than buffer", [][]byte{[]byte("x"), big, []byte("y")}, 0},
		{"larger than buffer, small reads", [][]byte{big, []byte("y")}, 1000},
		{"multi-packet", [][]byte{huge, []byte("after")}, 0},
		{"multi-packet exact multiple", [][]byte{exact, []byte("after")}, 0},
		{"multi-packet three frames", [][]byte{double}, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPackets()
			for _, pl := range tt.payloads {
				p.add(pl)
			}
			w := newWire(&replayConn{resp: p.b, chunk: tt.chunk})
			w.seq = 1
			for i, want := range tt.payloads {
				got, err := w.readPacket()
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d: got %d bytes, want %d", i, len(got), len(want))
				}
			}
			if _, err := w.readPacket(); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after the last packet: got %v, want io.ErrUnexpectedEOF", err)
			}
			w.release()
			if len(w.buf) > maxKeptBuffer || cap(w.big) > maxKeptBuffer {
				t.Errorf("release kept %d/%d bytes", len(w.buf), cap(w.big))
			}
		})
	}
}

func TestReadPacketErrors(t *testing.T) {
	tests := []struct {
		name    string
		stream  []byte
		wantNum uint16 // protocolError number; 0: want io.ErrUnexpectedEOF
	}{
		{"wrong sequence", []byte{1, 0, 0, 5, 'x'}, CRCommandsOutOfSync},
		{"truncated header", []byte{1, 0}, 0},
		{"truncated payload", []byte{5, 0, 0, 1, 'a', 'b'}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWire(&replayConn{resp: tt.stream})
			w.seq = 1
			_, err := w.readPacket()
			var pe *protocolError
			switch {
			case tt.wantNum == 0 && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
			case tt.wantNum != 0 && (!errors.As(err, &pe) || pe.num != tt.wantNum):
				t.Fatalf("got %v, want protocol error %d", err, tt.wantNum)
			}
		})
	}
}

func TestWriteCommand(t *testing.T) {
	tests := []struct {
		name    string
		argLen  int
		wantSeq uint8 // frames written
	}{
		{"empty", 0, 1},
		{"small", 100, 1},
		{"one below the frame size", maxPayload - 2, 1},
		{"exactly one frame", maxPayload - 1, 2},
		{"two frames", maxPayload + 100, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arg := string(bytes.Repeat([]byte{'q'}, tt.argLen))
			rc := &replayConn{}
			w := newWire(rc)
			if err := w.writeCommand(comQuery, arg); err != nil {
				t.Fatal(err)
			}
			if w.seq != tt.wantSeq {
				t.Errorf("seq after write = %d, want %d", w.seq, tt.wantSeq)
			}
			// Read the frames back as a server would.
			back := newWire(&replayConn{resp: rc.written.Bytes()})
			payload, err := back.readPacket()
			if err != nil {
				t.Fatal(err)
			}
			if len(payload) != 1+tt.argLen || payload[0] != comQuery || string(payload[1:]) != arg {
				t.Fatalf("payload of %d bytes does not match the command", len(payload))
			}
			if back.r != back.w || back.seq != tt.wantSeq {
				t.Errorf("frames: %d bytes left over, %d frames; want 0, %d", back.w-back.r, back.seq, tt.wantSeq)
			}
		})
	}
}
