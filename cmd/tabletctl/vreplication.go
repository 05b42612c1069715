package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tabletd/tabletd/proto/tabletmanagerdatapb"
	"github.com/tabletd/tabletd/proto/tabletmanagerservicepb"
)

// vreplication lists the VReplication streams a tablet (tabletd or vttablet) applies, from
// its TabletManager ReadVReplicationWorkflows: no vtctld needed.
func vreplication(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("vreplication", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "tablet gRPC address host:port")
	workflow := fs.String("workflow", "", "only this workflow")
	format := fs.String("format", "text", "text or json")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *server == "" || fs.NArg() != 0 || (*format != "text" && *format != "json") {
		fmt.Fprintln(stderr, "usage: tabletctl vreplication --server host:grpc-port [--workflow name] [--format text|json]")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl vreplication: %v\n", err)
		return 1
	}
	defer conn.Close()
	req := &tabletmanagerdatapb.ReadVReplicationWorkflowsRequest{}
	if *workflow != "" {
		req.IncludeWorkflows = []string{*workflow}
	}
	resp, err := tabletmanagerservicepb.NewTabletManagerClient(conn).ReadVReplicationWorkflows(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "tabletctl vreplication: %s\n", status.Convert(err).Message())
		return 1
	}
	if *format == "json" {
		b, _ := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(resp)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	}
	printStreams(stdout, resp, time.Now())
	return 0
}

// printStreams prints one line per stream. LAG is how old the last applied source
// transaction is, or, while no transaction came, how old the last heartbeat is (what
// vtctld's SwitchTraffic checks).
func printStreams(w io.Writer, resp *tabletmanagerdatapb.ReadVReplicationWorkflowsResponse, now time.Time) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tID\tSOURCE\tSTATE\tLAG\tROWS COPIED\tPOSITION\tMESSAGE")
	n := 0
	for _, wf := range resp.GetWorkflows() {
		for _, s := range wf.Streams {
			lag := "-"
			ts := max(s.GetTransactionTimestamp().GetSeconds(), s.GetTimeHeartbeat().GetSeconds())
			if ts > 0 {
				lag = now.Sub(time.Unix(ts, 0)).Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%d\t%s/%s\t%s\t%s\t%d\t%s\t%s\n", wf.Workflow, s.Id, s.GetBls().GetKeyspace(), s.GetBls().GetShard(),
				s.State, lag, s.RowsCopied, s.Pos, strings.ReplaceAll(s.Message, "\n", " "))
			n++
		}
	}
	_ = tw.Flush()
	if n == 0 {
		fmt.Fprintln(w, "no streams")
	}
}
