package schema

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/tabletd/tabletd/mysqlconn"
	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

// databaseTemplate stands for the database name in normalised definitions (Vitess's).
const databaseTemplate = "{{.DatabaseName}}"

// autoIncrement is the table option SHOW CREATE TABLE prints after each insert; it differs
// between tablets with the same schema, so Vitess removes it.
var autoIncrement = regexp.MustCompile(` AUTO_INCREMENT=\d+`)

// errnoNoSuchTable: a table dropped between the listing and reading its definition.
const errnoNoSuchTable = 1146

// GetSchema returns the tablet database's schema as vttablet's mysqlctl builds it.
func (e *Engine) GetSchema(ctx context.Context, req *tabletmanagerdatapb.GetSchemaRequest) (*tabletmanagerdatapb.SchemaDefinition, error) {
	return e.getSchema(ctx, e.cfg.DBName, req)
}

func (e *Engine) getSchema(ctx context.Context, dbName string, req *tabletmanagerdatapb.GetSchemaRequest) (*tabletmanagerdatapb.SchemaDefinition, error) {
	filter, err := newTableFilter(req.GetTables(), req.GetExcludeTables(), req.GetIncludeViews())
	if err != nil {
		return nil, err
	}
	c, err := e.connect(ctx, roleDba, false)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sd := &tabletmanagerdatapb.SchemaDefinition{}
	if sd.DatabaseSchema, err = databaseDefinition(ctx, c, dbName); err != nil {
		return nil, err
	}
	tds, err := listTables(ctx, c, dbName, filter, req.GetIncludeViews())
	if err != nil || len(tds) == 0 {
		return sd, err
	}
	if err := e.readDefinitions(ctx, c, dbName, tds, req.GetTableSchemaOnly()); err != nil {
		return nil, err
	}
	if !req.GetTableSchemaOnly() {
		pks, err := primaryKeys(ctx, c, dbName, tds)
		if err != nil {
			return nil, err
		}
		for _, td := range tds {
			td.PrimaryKeyColumns = pks[td.Name]
		}
	}
	sd.TableDefinitions = tds
	return sd, nil
}

// databaseDefinition is SHOW CREATE DATABASE with the (first) quoted name templated.
func databaseDefinition(ctx context.Context, c *mysqlconn.Conn, dbName string) (string, error) {
	qr, err := fetch(ctx, c, "SHOW CREATE DATABASE IF NOT EXISTS "+quoteIdent(dbName), -1)
	if err != nil {
		return "", err
	}
	if len(qr.Rows) == 0 || len(qr.Rows[0].Lengths) < 2 {
		return "", rpcerr.New(vtrpcpb.Code_INTERNAL, "empty create database statement for %v", dbName)
	}
	return strings.Replace(rowValues(qr.Rows[0])[1].s, quoteIdent(dbName), databaseTemplate, 1), nil
}

// listTables returns the selected tables with type, data length and row count, by name.
func listTables(ctx context.Context, c *mysqlconn.Conn, dbName string, f *tableFilter, includeViews bool) ([]*tabletmanagerdatapb.TableDefinition, error) {
	q := "SELECT table_name, table_type, data_length, table_rows FROM information_schema.tables WHERE table_schema = " + quoteString(dbName)
	if !includeViews {
		q += " AND table_type = '" + typeBaseTable + "'"
	}
	qr, err := fetch(ctx, c, q, -1)
	if err != nil {
		return nil, err
	}
	var tds []*tabletmanagerdatapb.TableDefinition
	for _, r := range qr.Rows {
		v := rowValues(r)
		if !f.includes(v[0].s, v[1].s) {
			continue
		}
		td := &tabletmanagerdatapb.TableDefinition{Name: v[0].s, Type: v[1].s}
		if td.DataLength, err = uintOrZero(v[2]); err != nil {
			return nil, err
		}
		if td.RowCount, err = uintOrZero(v[3]); err != nil {
			return nil, err
		}
		tds = append(tds, td)
	}
	sort.Slice(tds, func(i, j int) bool { return tds[i].Name < tds[j].Name })
	return tds, nil
}

// uintOrZero reads a count that is NULL for views (then 0, as Vitess).
func uintOrZero(v value) (uint64, error) {
	if v.null {
		return 0, nil
	}
	n, err := strconv.ParseUint(v.s, 10, 64)
	if err != nil {
		return 0, rpcerr.New(vtrpcpb.Code_INTERNAL, "information_schema.tables returned %q where a count was expected", v.s)
	}
	return n, nil
}

// readDefinitions fills each table's CREATE statement and, unless schemaOnly, its columns
// and fields, over up to SchemaConcurrency connections (c is one of them). The first error
// stops the others.
func (e *Engine) readDefinitions(ctx context.Context, c *mysqlconn.Conn, dbName string, tds []*tabletmanagerdatapb.TableDefinition, schemaOnly bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan *tabletmanagerdatapb.TableDefinition)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	worker := func(conn *mysqlconn.Conn) {
		for td := range jobs {
			if err := readDefinition(ctx, conn, dbName, td, schemaOnly); err != nil {
				fail(err)
			}
		}
	}
	workers := min(e.cfg.SchemaConcurrency, len(tds))
	wg.Add(1)
	go func() {
		defer wg.Done()
		worker(c) // the caller's connection: the caller closes it
	}()
	for range workers - 1 {
		extra, err := e.connect(ctx, roleDba, false)
		if err != nil {
			break // the workers already running do the work
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer extra.Close() // closed before Done: nothing outlives the call
			worker(extra)
		}()
	}
	for _, td := range tds {
		select {
		case jobs <- td:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// readDefinition reads one table's definition. A table that no longer exists (dropped since
// the listing) keeps only its name and type, as in Vitess.
func readDefinition(ctx context.Context, c *mysqlconn.Conn, dbName string, td *tabletmanagerdatapb.TableDefinition, schemaOnly bool) error {
	def, err := tableDefinition(ctx, c, dbName, td.Name, td.Type)
	if err == nil && !schemaOnly {
		td.Fields, td.Columns, err = tableFields(ctx, c, dbName, td.Name)
	}
	if err != nil {
		if n, _, ok := rpcerr.Errno(err); ok && n == errnoNoSuchTable {
			td.Fields, td.Columns = nil, nil
			return nil
		}
		return err
	}
	td.Schema = def
	return nil
}

// tableDefinition is SHOW CREATE TABLE without AUTO_INCREMENT=N; a view's own database name
// is templated wherever it appears.
func tableDefinition(ctx context.Context, c *mysqlconn.Conn, dbName, table, tableType string) (string, error) {
	qr, err := fetch(ctx, c, "SHOW CREATE TABLE "+quoteIdent(dbName)+"."+quoteIdent(table), -1)
	if err != nil {
		return "", err
	}
	if len(qr.Rows) == 0 || len(qr.Rows[0].Lengths) < 2 {
		return "", rpcerr.New(vtrpcpb.Code_INTERNAL, "empty create table statement for %v", table)
	}
	def := autoIncrement.ReplaceAllLiteralString(rowValues(qr.Rows[0])[1].s, "")
	if tableType == typeView {
		def = strings.ReplaceAll(def, quoteIdent(dbName), databaseTemplate)
	}
	return def, nil
}

// tableFields returns a table's columns in order with their full field metadata, read from
// a SELECT that returns no row, as Vitess does.
func tableFields(ctx context.Context, c *mysqlconn.Conn, dbName, table string) ([]*querypb.Field, []string, error) {
	q := fmt.Sprintf("SELECT COLUMN_NAME as column_name FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
		quoteString(dbName), quoteString(table))
	qr, err := fetch(ctx, c, q, -1)
	if err != nil {
		return nil, nil, err
	}
	cols := make([]string, 0, len(qr.Rows))
	for _, r := range qr.Rows {
		if v := rowValues(r)[0]; v.s != "" {
			cols = append(cols, quoteIdent(v.s))
		}
	}
	if len(cols) == 0 {
		return nil, nil, rpcerr.New(vtrpcpb.Code_INTERNAL, "unable to get columns for table %s.%s using query %s", dbName, table, q)
	}
	sel := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteIdent(dbName) + "." + quoteIdent(table) + " WHERE 1 != 1"
	fr, err := fetch(ctx, c, sel, 0)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(fr.Fields))
	for i, f := range fr.Fields {
		names[i] = f.Name
	}
	return fr.Fields, names, nil
}

// primaryKeys returns each table's primary key columns in key order.
func primaryKeys(ctx context.Context, c *mysqlconn.Conn, dbName string, tds []*tabletmanagerdatapb.TableDefinition) (map[string][]string, error) {
	names := make([]string, len(tds))
	for i, td := range tds {
		names[i] = quoteString(td.Name)
	}
	// Aliases keep the column names lower case whatever the server's information_schema does.
	q := "SELECT TABLE_NAME as table_name, COLUMN_NAME as column_name FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = " +
		quoteString(dbName) + " AND TABLE_NAME IN (" + strings.Join(names, ", ") + ") AND LOWER(INDEX_NAME) = 'primary' ORDER BY table_name, SEQ_IN_INDEX"
	qr, err := fetch(ctx, c, q, -1)
	if err != nil {
		return nil, err
	}
	pks := map[string][]string{}
	for _, r := range qr.Rows {
		v := rowValues(r)
		pks[v[0].s] = append(pks[v[0].s], v[1].s)
	}
	return pks, nil
}
