package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/queryservicepb"
	"github.com/tabletd/tabletd/proto/topodatapb"
)

// query runs one statement and prints it like the mysql client. The target (keyspace, shard,
// type) is read from the tablet's own health record unless given.
func query(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("query", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "tablet gRPC address host:port")
	keyspace := fs.String("keyspace", "", "target keyspace (default: the tablet's)")
	shard := fs.String("shard", "", "target shard (default: the tablet's)")
	ttype := fs.String("tablet-type", "", "target tablet type (default: the tablet's)")
	user := fs.String("user", "tabletctl", "caller name sent as VTGateCallerID")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *server == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, `usage: tabletctl query --server host:grpc-port "select …"`)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl query: %v\n", err)
		return 1
	}
	defer conn.Close()
	client := queryservicepb.NewQueryClient(conn)
	target, err := resolveTarget(ctx, client, *keyspace, *shard, *ttype)
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl query: %v\n", err)
		return 1
	}
	start := time.Now()
	res, err := client.Execute(ctx, &querypb.ExecuteRequest{Target: target,
		ImmediateCallerId: &querypb.VTGateCallerID{Username: *user}, Query: &querypb.BoundQuery{Sql: fs.Arg(0)}})
	if err != nil {
		fmt.Fprintf(stderr, "ERROR: %s\n", status.Convert(err).Message())
		return 1
	}
	printResult(stdout, res.Result, time.Since(start))
	return 0
}

func resolveTarget(ctx context.Context, c queryservicepb.QueryClient, ks, shard, tt string) (*querypb.Target, error) {
	t := &querypb.Target{Keyspace: ks, Shard: shard}
	if tt != "" {
		v, ok := topodatapb.TabletType_value[strings.ToUpper(tt)]
		if !ok {
			return nil, fmt.Errorf("--tablet-type %q is not a tablet type", tt)
		}
		t.TabletType = topodatapb.TabletType(v)
	}
	if ks != "" && shard != "" && tt != "" {
		return t, nil
	}
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.StreamHealth(hctx, &querypb.StreamHealthRequest{})
	if err != nil {
		return nil, err
	}
	h, err := st.Recv()
	if err != nil {
		return nil, fmt.Errorf("reading the tablet's target from StreamHealth: %s", status.Convert(err).Message())
	}
	if t.Keyspace == "" {
		t.Keyspace = h.Target.GetKeyspace()
	}
	if t.Shard == "" {
		t.Shard = h.Target.GetShard()
	}
	if tt == "" {
		t.TabletType = h.Target.GetTabletType()
	}
	return t, nil
}

// printResult draws the result as the mysql client does.
func printResult(w io.Writer, r *querypb.QueryResult, took time.Duration) {
	secs := fmt.Sprintf("(%.3f sec)", took.Seconds())
	if len(r.Fields) == 0 {
		fmt.Fprintf(w, "Query OK, %d row%s affected %s\n", r.RowsAffected, plural(r.RowsAffected), secs)
		return
	}
	cells := make([][]string, 0, len(r.Rows)+1)
	head := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		head[i] = f.Name
	}
	cells = append(cells, head)
	for _, row := range r.Rows {
		vals, off := make([]string, len(row.Lengths)), int64(0)
		for i, l := range row.Lengths {
			if l < 0 {
				vals[i] = "NULL"
				continue
			}
			vals[i] = string(row.Values[off : off+l])
			off += l
		}
		cells = append(cells, vals)
	}
	widths := make([]int, len(head))
	for _, row := range cells {
		for i, v := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	line := "+"
	for _, wd := range widths {
		line += strings.Repeat("-", wd+2) + "+"
	}
	fmt.Fprintln(w, line)
	for i, row := range cells {
		var b strings.Builder
		b.WriteString("|")
		for j, v := range row {
			b.WriteString(" " + v + strings.Repeat(" ", widths[j]-utf8.RuneCountInString(v)) + " |")
		}
		fmt.Fprintln(w, b.String())
		if i == 0 {
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w, line)
	n := uint64(len(r.Rows))
	fmt.Fprintf(w, "%d row%s in set %s\n", n, plural(n), secs)
}

func plural(n uint64) string {
	if n == 1 {
		return ""
	}
	return "s"
}
