package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// probe is the container health check of the FROM-scratch image, which has no shell or
// curl: it GETs each URL and succeeds only when every one answers 200. One line per URL
// (docker inspect shows it), so "alive but not serving" (/healthz 200, /debug/health 500)
// reads differently from "not answering".
func probe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up on each URL after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "tabletctl probe: give one or more URLs, e.g. http://127.0.0.1:15000/healthz http://127.0.0.1:15000/debug/health")
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	code := 0
	for _, url := range fs.Args() {
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			fmt.Fprintf(stderr, "tabletctl probe: %q is not an http:// or https:// URL\n", url)
			return 2
		}
		status, body, err := get(ctx, client, url)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "%s: no answer: %v\n", url, err)
			code = 1
		case status != http.StatusOK:
			fmt.Fprintf(stdout, "%s: %d %s\n", url, status, body)
			code = 1
		default:
			fmt.Fprintf(stdout, "%s: 200 %s\n", url, body)
		}
	}
	return code
}

// get returns the status and the body's first line (bounded: a probe never buffers a page).
func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return resp.StatusCode, line, nil
}
