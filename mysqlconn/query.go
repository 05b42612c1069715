package mysqlconn

import (
	"context"
	"errors"
	"fmt"

	"github.com/tabletd/tabletd/proto/querypb"
)

// FieldDetail says how much column metadata a result carries. The first
// three values equal query.ExecuteOptions.IncludedFields, so
// FieldDetail(options.IncludedFields) converts.
type FieldDetail int32

const (
	// FieldsTypeAndName keeps each Field's name and type (Vitess's default).
	FieldsTypeAndName = FieldDetail(querypb.ExecuteOptions_TYPE_AND_NAME)
	// FieldsTypeOnly keeps each Field's type.
	FieldsTypeOnly = FieldDetail(querypb.ExecuteOptions_TYPE_ONLY)
	// FieldsAll keeps every attribute the text protocol carries: name, type,
	// table, org_table, database, org_name, column_length, charset, decimals
	// and flags (with NUM_FLAG added on numeric types, as vttablet does).
	// column_type is not in the protocol and stays empty, as in vttablet.
	FieldsAll = FieldDetail(querypb.ExecuteOptions_ALL)
	// FieldsNone builds no Fields at all (vttablet's wantfields=false): the
	// result's Fields is nil and Stream sends no fields message.
	FieldsNone FieldDetail = 3
)

// DefaultStreamBufferSize is Stream's batch size when bufferSize <= 0
// (vttablet's --queryserver-config-stream-buffer-size default).
const DefaultStreamBufferSize = 32 << 10

// maxAbortDrain bounds how much of a result Stream reads and discards after
// send failed, to keep the connection; a longer result closes it instead.
const maxAbortDrain = 1 << 20

func (d FieldDetail) validate() error {
	if d < FieldsTypeAndName || d > FieldsNone {
		return fmt.Errorf("mysqlconn: unknown FieldDetail %d", d)
	}
	return nil
}

// Execute runs one statement and returns its whole result: rows in the text
// protocol representation, NULL as length -1. For a statement without a
// result set (DML, DDL) it returns rows_affected, insert_id (insert_id_changed
// when non-zero, as vttablet) and, with Config.QueryInfo, the OK packet's info
// message.
//
// With maxRows > 0, a result with more rows than maxRows is read to its end
// and discarded, and the error wraps ErrRowsExceeded. A statement string
// producing several results (multi-statements, CALL with a result set) has
// all of them read and discarded and returns ErrMultipleResults (joined with
// the first server error among the later results, if any).
//
// Errors: a server error is a *SQLError and leaves the connection usable.
// A network or protocol failure is a *SQLError with Num 2006 (CR_SERVER_GONE),
// 2013 (CR_SERVER_LOST), 2014 or 2027 and closes the connection (IsClosed).
// See Config.CancelGrace for what a done ctx does.
func (c *Conn) Execute(ctx context.Context, sql string, maxRows int, fields FieldDetail) (*querypb.QueryResult, error) {
	if err := fields.validate(); err != nil {
		return nil, err
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.end()
	if err := c.w.writeCommand(comQuery, sql); err != nil {
		return nil, c.ioError(err, true)
	}
	qr, ncols, err := c.readHeader(fields)
	if err != nil {
		return nil, err
	}
	if ncols > 0 {
		if err := c.readRows(qr, ncols, maxRows); err != nil {
			return nil, err
		}
	}
	if c.status&StatusMoreResultsExists != 0 {
		return nil, c.drainMore(ErrMultipleResults)
	}
	return qr, nil
}

// readRows reads the rows of the current result set into qr.
func (c *Conn) readRows(qr *querypb.QueryResult, ncols, maxRows int) error {
	rb := &c.rows
	rb.reset()
	for {
		data, end, err := c.nextRow()
		if err != nil {
			return err
		}
		if end {
			qr.Rows = rb.appendTo(qr.Rows)
			return nil
		}
		if maxRows > 0 && len(qr.Rows)+rb.rowCount() == maxRows {
			if _, err := c.skipRows(0); err != nil {
				return err
			}
			return c.drainMore(fmt.Errorf("%w: more than %d rows", ErrRowsExceeded, maxRows))
		}
		if err := rb.add(data, ncols); err != nil {
			return c.ioError(err, false)
		}
		if rb.full() {
			qr.Rows = rb.appendTo(qr.Rows)
		}
	}
}

// Stream runs one statement and calls send first with the fields (a
// QueryResult with only Fields; none with FieldsNone), then with batches of
// rows of about bufferSize bytes of values each (DefaultStreamBufferSize when
// bufferSize <= 0). A statement without a result set gives one call with
// rows_affected, insert_id and info.
//
// The row batches reuse their memory: a batch (its Rows and their Lengths and
// Values) is only valid until send returns, so send must serialize or copy
// what it keeps, as a gRPC stream's Send does. The fields message is not reused.
//
// If send returns an error, Stream stops and returns that error. It then reads
// and discards up to 1 MiB of the rest of the result to keep the connection;
// when more is left, it closes the connection instead (IsClosed tells which).
// Errors are otherwise as in Execute.
func (c *Conn) Stream(ctx context.Context, sql string, fields FieldDetail, bufferSize int, send func(*querypb.QueryResult) error) error {
	if err := fields.validate(); err != nil {
		return err
	}
	if send == nil {
		return errors.New("mysqlconn: Stream needs a send function")
	}
	if bufferSize <= 0 {
		bufferSize = DefaultStreamBufferSize
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	if err := c.w.writeCommand(comQuery, sql); err != nil {
		return c.ioError(err, true)
	}
	qr, ncols, err := c.readHeader(fields)
	if err != nil {
		return err
	}
	if ncols == 0 {
		if c.status&StatusMoreResultsExists != 0 {
			return c.drainMore(ErrMultipleResults)
		}
		return send(qr)
	}
	if fields != FieldsNone {
		if err := send(qr); err != nil {
			return c.abortStream(true, err)
		}
	}
	if err := c.streamRows(ncols, bufferSize, send); err != nil {
		return err
	}
	if c.status&StatusMoreResultsExists != 0 {
		return c.drainMore(ErrMultipleResults)
	}
	return nil
}

// streamRows sends the rows of the current result set in batches that alias
// the row buffer.
func (c *Conn) streamRows(ncols, bufferSize int, send func(*querypb.QueryResult) error) error {
	rb := &c.rows
	rb.reset()
	batch := &querypb.QueryResult{}
	for {
		data, end, err := c.nextRow()
		if err != nil {
			return err
		}
		if end {
			break
		}
		if err := rb.add(data, ncols); err != nil {
			return c.ioError(err, false)
		}
		if rb.valueBytes() >= bufferSize {
			batch.Rows = rb.view(batch.Rows[:0])
			if err := send(batch); err != nil {
				return c.abortStream(true, err)
			}
			rb.reset()
		}
	}
	if rb.rowCount() > 0 {
		batch.Rows = rb.view(batch.Rows[:0])
		if err := send(batch); err != nil {
			return c.abortStream(false, err)
		}
	}
	return nil
}

// abortStream returns sendErr after leaving the connection safe: the rest of
// the result is discarded if it is short, else the connection is closed.
func (c *Conn) abortStream(inRows bool, sendErr error) error {
	if inRows {
		complete, err := c.skipRows(maxAbortDrain)
		if err != nil || !complete {
			c.closeConn()
			return sendErr
		}
	}
	if c.status&StatusMoreResultsExists != 0 {
		_ = c.drainMore(nil)
	}
	return sendErr
}

// readHeader reads the response to COM_QUERY up to the first row: an OK
// packet (ncols 0; qr has the counters), an ERR packet (a *SQLError), or a
// result set's column definitions (qr has the Fields).
func (c *Conn) readHeader(detail FieldDetail) (qr *querypb.QueryResult, ncols int, err error) {
	data, err := c.w.readPacket()
	if err != nil {
		return nil, 0, c.ioError(err, false)
	}
	if len(data) == 0 {
		return nil, 0, c.ioError(malformed("empty response packet"), false)
	}
	switch data[0] {
	case okHeader:
		ok, err := parseOK(data)
		if err != nil {
			return nil, 0, c.ioError(err, false)
		}
		c.warnings, c.status = ok.warnings, ok.status
		qr = &querypb.QueryResult{RowsAffected: ok.affectedRows, InsertId: ok.insertID, InsertIdChanged: ok.insertID > 0}
		if c.cfg.QueryInfo && len(ok.info) > 0 {
			qr.Info = string(ok.info)
		}
		return qr, 0, nil
	case errHeader:
		c.warnings, c.status = 0, 0
		return nil, 0, c.serverError(data)
	case localInfile:
		// CLIENT_LOCAL_FILES is not negotiated: a server asking for a file breaks the protocol.
		return nil, 0, c.ioError(malformed("unexpected LOCAL INFILE request"), false)
	}
	n, pos, ok := readLenEnc(data, 0)
	if !ok || pos != len(data) || n == 0 || n > 1<<16 {
		return nil, 0, c.ioError(malformed("bad column count packet"), false)
	}
	ncols = int(n)
	fields, err := c.readFields(ncols, detail)
	if err != nil {
		return nil, 0, err
	}
	return &querypb.QueryResult{Fields: fields}, ncols, nil
}

// readFields reads n column definitions and the EOF packet after them. A
// column type Vitess does not know fails the statement (as in vttablet) after
// the result has been discarded.
func (c *Conn) readFields(n int, detail FieldDetail) ([]*querypb.Field, error) {
	var fields []querypb.Field
	var ptrs []*querypb.Field
	if detail != FieldsNone {
		fields = make([]querypb.Field, n)
		ptrs = make([]*querypb.Field, n)
	}
	c.strs.reset()
	var typeErr error
	for i := range n {
		data, err := c.w.readPacket()
		if err != nil {
			return nil, c.ioError(err, false)
		}
		if detail == FieldsNone {
			continue
		}
		cd, err := parseColumnDef(data, detail, &c.strs)
		if err != nil {
			return nil, c.ioError(err, false)
		}
		f := &fields[i]
		if f.Type, err = MySQLToType(cd.mysqlType, cd.flags); err != nil && typeErr == nil {
			typeErr = clientError(CRMalformedPacket, fmt.Sprintf("mysqlconn: column %d", i), err)
		}
		fillField(f, cd, detail)
		ptrs[i] = f
	}
	if err := c.readFieldsEOF(); err != nil {
		return nil, err
	}
	if typeErr != nil {
		if _, err := c.skipRows(0); err != nil {
			return nil, err
		}
		return nil, c.drainMore(typeErr)
	}
	assignStrings(fields, detail, &c.strs)
	return ptrs, nil
}

// readFieldsEOF reads the EOF packet that ends the column definitions
// (CLIENT_DEPRECATE_EOF is not negotiated by go-mysql).
func (c *Conn) readFieldsEOF() error {
	data, err := c.w.readPacket()
	switch {
	case err != nil:
		return c.ioError(err, false)
	case isEOFPacket(data):
		return nil
	case len(data) > 0 && data[0] == errHeader:
		return c.serverError(data)
	}
	return c.ioError(malformed("expected EOF after column definitions"), false)
}

// nextRow returns the next row packet of the current result set, or end at
// its EOF packet (recording warnings and status), or the server's error.
func (c *Conn) nextRow() (data []byte, end bool, err error) {
	data, err = c.w.readPacket()
	switch {
	case err != nil:
		return nil, false, c.ioError(err, false)
	case isEOFPacket(data):
		c.warnings, c.status = parseEOF(data)
		return nil, true, nil
	case len(data) > 0 && data[0] == errHeader:
		c.warnings, c.status = 0, 0
		return nil, false, c.serverError(data)
	}
	return data, false, nil
}

// skipRows reads and discards the rest of the current result set. With
// limit > 0 it gives up after limit bytes (complete false). A server error
// ends the result set and is not reported.
func (c *Conn) skipRows(limit int) (complete bool, err error) {
	read := 0
	for {
		data, end, err := c.nextRow()
		var se *SQLError
		switch {
		case errors.As(err, &se) && !c.closed.Load():
			return true, nil
		case err != nil:
			return false, err
		case end:
			return true, nil
		}
		read += len(data)
		if limit > 0 && read > limit {
			return false, nil
		}
	}
}

// drainMore reads and discards the further results of a multi-result
// response, returning err joined with the first server error among them.
func (c *Conn) drainMore(err error) error {
	for c.status&StatusMoreResultsExists != 0 {
		_, ncols, herr := c.readHeader(FieldsNone)
		if herr != nil {
			return errors.Join(err, herr)
		}
		if ncols > 0 {
			if _, rerr := c.skipRows(0); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
	}
	return err
}

// serverError converts an ERR packet. Errors after which the server closes the connection
// (SQLSTATE 08S01, e.g. 1153 packet too large; 1927 connection killed) mark it closed at
// once, so a pool never hands it out again.
func (c *Conn) serverError(data []byte) *SQLError {
	e := parseErrorPacket(data)
	if e.State == "08S01" || e.Num == 1153 || e.Num == 1927 {
		c.closeConn()
	}
	return e
}
