package mysqlconn

import (
	"encoding/binary"
	"slices"

	"github.com/tabletd/tabletd/proto/querypb"
)

// Packet header bytes of the text protocol.
const (
	okHeader     = 0x00
	localInfile  = 0xfb
	eofHeader    = 0xfe
	errHeader    = 0xff
	nullValue    = 0xfb // a NULL column value in a text row
	maxEOFLength = 9    // an EOF packet is shorter; a row starting with 0xfe is not
)

// readLenEnc reads a length-encoded integer at pos. ok is false when the
// packet is too short or the first byte is not an integer prefix (0xfb NULL,
// 0xff).
func readLenEnc(data []byte, pos int) (v uint64, next int, ok bool) {
	if pos >= len(data) {
		return 0, pos, false
	}
	switch b := data[pos]; {
	case b < 0xfb:
		return uint64(b), pos + 1, true
	case b == 0xfc:
		if pos+3 > len(data) {
			return 0, pos, false
		}
		return uint64(binary.LittleEndian.Uint16(data[pos+1:])), pos + 3, true
	case b == 0xfd:
		if pos+4 > len(data) {
			return 0, pos, false
		}
		d := data[pos+1 : pos+4]
		return uint64(d[0]) | uint64(d[1])<<8 | uint64(d[2])<<16, pos + 4, true
	case b == 0xfe:
		if pos+9 > len(data) {
			return 0, pos, false
		}
		return binary.LittleEndian.Uint64(data[pos+1:]), pos + 9, true
	}
	return 0, pos, false
}

// readLenEncBytes reads a length-encoded string at pos; the result aliases data.
func readLenEncBytes(data []byte, pos int) (s []byte, next int, ok bool) {
	n, pos, ok := readLenEnc(data, pos)
	if !ok || n > uint64(len(data)-pos) {
		return nil, pos, false
	}
	end := pos + int(n)
	return data[pos:end], end, true
}

// isEOFPacket reports an EOF packet (end of column definitions or of rows).
func isEOFPacket(data []byte) bool {
	return len(data) > 0 && data[0] == eofHeader && len(data) < maxEOFLength
}

// parseEOF returns the warning count and status flags of an EOF packet.
func parseEOF(data []byte) (warnings, status uint16) {
	if len(data) >= 5 {
		warnings = binary.LittleEndian.Uint16(data[1:])
		status = binary.LittleEndian.Uint16(data[3:])
	}
	return warnings, status
}

// okPacket is a parsed OK packet; info aliases the packet.
type okPacket struct {
	affectedRows, insertID uint64
	status, warnings       uint16
	info                   []byte
}

// parseOK parses an OK packet. The info message is a length-encoded string
// (what MySQL and MariaDB send, as Vitess reads it); a packet whose rest is not
// one is taken whole (the protocol's string<EOF> form). CLIENT_SESSION_TRACK
// is not negotiated by go-mysql, so no session state follows.
func parseOK(data []byte) (okPacket, error) {
	var ok okPacket
	var good bool
	pos := 1
	if ok.affectedRows, pos, good = readLenEnc(data, pos); !good {
		return ok, malformed("OK packet: bad affected rows")
	}
	if ok.insertID, pos, good = readLenEnc(data, pos); !good {
		return ok, malformed("OK packet: bad last insert id")
	}
	if pos+4 > len(data) {
		return ok, malformed("OK packet: truncated status")
	}
	ok.status = binary.LittleEndian.Uint16(data[pos:])
	ok.warnings = binary.LittleEndian.Uint16(data[pos+2:])
	ok.info = data[pos+4:]
	if info, next, good := readLenEncBytes(ok.info, 0); good && next == len(ok.info) {
		ok.info = info
	}
	return ok, nil
}

// parseErrorPacket converts an ERR packet to a SQLError (copying its strings).
func parseErrorPacket(data []byte) *SQLError {
	if len(data) < 3 {
		return clientError(CRMalformedPacket, "mysqlconn: truncated error packet", nil)
	}
	e := &SQLError{Num: binary.LittleEndian.Uint16(data[1:]), State: SSUnknownSQLState}
	msg := data[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		e.State = string(msg[1:6])
		msg = msg[6:]
	}
	e.Message = string(msg)
	return e
}

// stringPool collects the strings of all column definitions of one result in
// one buffer, converted to a single string at the end: the Fields' strings are
// substrings of it, one allocation for all of them.
type stringPool struct {
	buf  []byte
	ends []int
}

func (sp *stringPool) reset() {
	sp.buf = sp.buf[:0]
	sp.ends = sp.ends[:0]
}

func (sp *stringPool) add(b []byte) {
	sp.buf = append(sp.buf, b...)
	sp.ends = append(sp.ends, len(sp.buf))
}

// columnDef is the fixed-length part of a column definition.
type columnDef struct {
	charset   uint16
	length    uint32
	mysqlType byte
	flags     uint16
	decimals  byte
}

// parseColumnDef parses a column definition packet (protocol 4.1): it adds the
// strings detail asks for to sp (TYPE_AND_NAME: name; ALL: database, table,
// org_table, name, org_name) and returns the fixed part.
func parseColumnDef(data []byte, detail FieldDetail, sp *stringPool) (columnDef, error) {
	var cd columnDef
	var strs [6][]byte // catalog, schema, table, org_table, name, org_name
	pos := 0
	for i := range strs {
		var ok bool
		if strs[i], pos, ok = readLenEncBytes(data, pos); !ok {
			return cd, malformed("column definition: truncated string %d", i)
		}
	}
	// A length byte (0x0c) precedes the fixed-length fields.
	if pos+11 > len(data) {
		return cd, malformed("column definition: truncated fixed fields")
	}
	pos++
	cd.charset = binary.LittleEndian.Uint16(data[pos:])
	cd.length = binary.LittleEndian.Uint32(data[pos+2:])
	cd.mysqlType = data[pos+6]
	cd.flags = binary.LittleEndian.Uint16(data[pos+7:])
	cd.decimals = data[pos+9]
	switch detail {
	case FieldsTypeAndName:
		sp.add(strs[4])
	case FieldsAll:
		sp.add(strs[1])
		sp.add(strs[2])
		sp.add(strs[3])
		sp.add(strs[4])
		sp.add(strs[5])
	}
	return cd, nil
}

// fillField sets a Field's numeric attributes from its definition. Flags (with
// NUM_FLAG on numeric types) are only kept when the server sent a length or a
// charset, as Vitess does.
func fillField(f *querypb.Field, cd columnDef, detail FieldDetail) {
	if detail != FieldsAll {
		return
	}
	f.Charset = uint32(cd.charset)
	f.ColumnLength = cd.length
	f.Decimals = uint32(cd.decimals)
	if cd.length != 0 || cd.charset != 0 {
		f.Flags = uint32(cd.flags)
		if isNumType(cd.mysqlType) {
			f.Flags |= flagNum
		}
	}
}

// assignStrings gives the Fields their strings from sp, in the order
// parseColumnDef added them.
func assignStrings(fields []querypb.Field, detail FieldDetail, sp *stringPool) {
	if detail != FieldsTypeAndName && detail != FieldsAll {
		return
	}
	all := string(sp.buf)
	i, start := 0, 0
	next := func() string {
		end := sp.ends[i]
		s := all[start:end]
		i, start = i+1, end
		return s
	}
	for k := range fields {
		f := &fields[k]
		if detail == FieldsAll {
			f.Database, f.Table, f.OrgTable = next(), next(), next()
			f.Name, f.OrgName = next(), next()
		} else {
			f.Name = next()
		}
	}
}

// Limits of a rowBuffer before Execute materializes the rows gathered so far
// (a huge result is built in slices of about this size, so it needs little
// memory beyond the result itself).
const (
	flushValueBytes = 1 << 20
	flushValues     = 128 << 10
	// maxKeptRowBytes bounds the scratch a Conn keeps between statements
	// (a result or stream batch up to this size reuses it, allocation-free).
	maxKeptRowBytes = 256 << 10
	// maxKeptRows bounds the Row structs Stream keeps between statements.
	maxKeptRows = 4096
)

// rowBuffer gathers the rows of a result in reused scratch buffers: every
// row's Lengths and Values, concatenated, and where each row ends. Execute
// then materializes them as querypb.Rows in exactly-sized allocations, four
// per result however many rows (Row structs, their pointers, lengths,
// values); Stream sends views of the scratch itself, allocating nothing.
type rowBuffer struct {
	lengths []int64
	values  []byte
	ends    []rowEnd
	slab    []querypb.Row // Row structs reused by views
}

// rowEnd is where a row's lengths and values end in the buffer.
type rowEnd struct{ lengths, values int }

func (b *rowBuffer) reset() {
	b.lengths = b.lengths[:0]
	b.values = b.values[:0]
	b.ends = b.ends[:0]
}

func (b *rowBuffer) rowCount() int   { return len(b.ends) }
func (b *rowBuffer) valueBytes() int { return len(b.values) }

// full reports whether Execute should materialize the buffered rows now.
func (b *rowBuffer) full() bool {
	return len(b.values) >= flushValueBytes || len(b.lengths) >= flushValues
}

// add parses one text-protocol row packet of ncols values (NULL: length -1).
func (b *rowBuffer) add(data []byte, ncols int) error {
	lengths, values := b.lengths, b.values
	l0 := len(lengths)
	pos := 0
	for range ncols {
		if pos < len(data) && data[pos] == nullValue {
			lengths = append(lengths, -1)
			pos++
			continue
		}
		v, next, ok := readLenEncBytes(data, pos)
		if !ok {
			return malformed("row: truncated value %d of %d", len(lengths)-l0, ncols)
		}
		lengths = append(lengths, int64(len(v)))
		values = append(values, v...)
		pos = next
	}
	if pos != len(data) {
		return malformed("row: %d bytes after the last of %d values", len(data)-pos, ncols)
	}
	b.lengths, b.values = lengths, values
	b.ends = append(b.ends, rowEnd{len(lengths), len(values)})
	return nil
}

// appendTo copies the buffered rows into new exactly-sized allocations,
// appends them to rows, and empties the buffer.
func (b *rowBuffer) appendTo(rows []*querypb.Row) []*querypb.Row {
	n := len(b.ends)
	if n == 0 {
		return rows
	}
	structs := make([]querypb.Row, n)
	lengths := append([]int64(nil), b.lengths...)
	var values []byte
	if len(b.values) > 0 {
		values = append([]byte(nil), b.values...)
	}
	rows = slices.Grow(rows, n)
	rows = b.carve(rows, structs, lengths, values)
	b.reset()
	return rows
}

// view appends Rows that alias the buffer (valid until its next reset).
func (b *rowBuffer) view(rows []*querypb.Row) []*querypb.Row {
	if cap(b.slab) < len(b.ends) {
		b.slab = make([]querypb.Row, len(b.ends), max(len(b.ends), 2*cap(b.slab)))
	}
	return b.carve(rows, b.slab[:len(b.ends)], b.lengths, b.values)
}

// carve points structs at the rows' parts of lengths and values (laid out as
// in the buffer) and appends them to rows. Each part is capped at its end so
// that appending to one row's slice cannot overwrite the next row.
func (b *rowBuffer) carve(rows []*querypb.Row, structs []querypb.Row, lengths []int64, values []byte) []*querypb.Row {
	var prev rowEnd
	for i, end := range b.ends {
		r := &structs[i]
		r.Lengths = lengths[prev.lengths:end.lengths:end.lengths]
		r.Values = values[prev.values:end.values:end.values]
		rows = append(rows, r)
		prev = end
	}
	return rows
}

// release drops scratch a large result grew beyond maxKeptRowBytes.
func (b *rowBuffer) release() {
	if cap(b.values) > maxKeptRowBytes || cap(b.lengths)*8 > maxKeptRowBytes || cap(b.ends)*16 > maxKeptRowBytes {
		*b = rowBuffer{}
	}
	if cap(b.slab) > maxKeptRows {
		b.slab = nil
	}
}
