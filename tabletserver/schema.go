package tabletserver

import (
	"context"

	"strings"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// schemaBatch bounds the definitions sent in one GetSchema response.
const schemaBatch = 100

// GetSchema streams the CREATE statements of the database's tables or views (all, or the
// named ones), or its user-defined functions — what vtgate's schema tracker asks for. Unlike
// vttablet, which answers from copies in _vt.tables, the definitions are read live.
func (s *Server) GetSchema(ctx context.Context, target *querypb.Target, kind querypb.SchemaTableType, names []string, send func(*querypb.GetSchemaResponse) error) error {
	if err := s.VerifyTarget(target); err != nil {
		return err
	}
	ctx, cancel := s.exec.queryContext(ctx, nil)
	defer cancel()
	pc, err := s.exec.dba.Get(ctx, nil)
	if err != nil {
		return poolError(err, s.exec.dba)
	}
	defer func() {
		if pc.Conn().IsClosed() {
			pc.Discard()
		} else {
			pc.Recycle()
		}
	}()
	c := pc.Conn()
	switch kind {
	case querypb.SchemaTableType_TABLES, querypb.SchemaTableType_VIEWS, querypb.SchemaTableType_ALL:
		return s.sendDefinitions(ctx, c, kind, names, send)
	case querypb.SchemaTableType_UDFS:
		return sendUDFs(ctx, c, send)
	}
	return rpcerr.New(vtrpcpb.Code_INVALID_ARGUMENT, "unknown schema table type %v", kind)
}

func (s *Server) sendDefinitions(ctx context.Context, c *mysqlconn.Conn, kind querypb.SchemaTableType, names []string, send func(*querypb.GetSchemaResponse) error) error {
	q := "select table_name, table_type from information_schema.tables where table_schema = database()"
	switch kind {
	case querypb.SchemaTableType_TABLES:
		q += " and table_type = 'BASE TABLE'"
	case querypb.SchemaTableType_VIEWS:
		q += " and table_type = 'VIEW'"
	}
	if len(names) > 0 {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = "'" + escapeString(n) + "'"
		}
		q += " and table_name in (" + strings.Join(quoted, ", ") + ")"
	}
	res, err := c.Execute(ctx, q, 0, mysqlconn.FieldsNone)
	if err != nil {
		return mysqlError(err, "", q, nil)
	}
	batch := &querypb.GetSchemaResponse{TableDefinition: map[string]string{}}
	for _, row := range res.Rows {
		vals := rowStrings(row)
		show := "show create table "
		if vals[1] == "VIEW" {
			show = "show create view "
		}
		def, err := c.Execute(ctx, show+quoteIdent(vals[0]), 0, mysqlconn.FieldsNone)
		if err != nil {
			return mysqlError(err, "", show, nil)
		}
		if len(def.Rows) == 0 {
			continue
		}
		batch.TableDefinition[vals[0]] = rowStrings(def.Rows[0])[1]
		if len(batch.TableDefinition) >= schemaBatch {
			if err := send(batch); err != nil {
				return err
			}
			batch = &querypb.GetSchemaResponse{TableDefinition: map[string]string{}}
		}
	}
	if len(batch.TableDefinition) > 0 || len(res.Rows) == 0 {
		return send(batch)
	}
	return nil
}

// sendUDFs lists mysql.func; ret is 0 string, 1 real, 2 integer, 4 decimal.
func sendUDFs(ctx context.Context, c *mysqlconn.Conn, send func(*querypb.GetSchemaResponse) error) error {
	const q = "select name, ret, type from mysql.func"
	res, err := c.Execute(ctx, q, 0, mysqlconn.FieldsNone)
	if err != nil {
		return mysqlError(err, "", q, nil)
	}
	out := &querypb.GetSchemaResponse{}
	for _, row := range res.Rows {
		v := rowStrings(row)
		rt := querypb.Type_VARCHAR
		switch v[1] {
		case "1":
			rt = querypb.Type_FLOAT64
		case "2":
			rt = querypb.Type_INT64
		case "4":
			rt = querypb.Type_DECIMAL
		}
		out.Udfs = append(out.Udfs, &querypb.UDFInfo{Name: v[0], Aggregating: strings.EqualFold(v[2], "aggregate"), ReturnType: rt})
	}
	return send(out)
}

// rowStrings splits a Vitess row into strings (NULL as "").
func rowStrings(r *querypb.Row) []string {
	out := make([]string, len(r.Lengths))
	off := int64(0)
	for i, l := range r.Lengths {
		if l < 0 {
			continue
		}
		out[i] = string(r.Values[off : off+l])
		off += l
	}
	return out
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func escapeString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}
