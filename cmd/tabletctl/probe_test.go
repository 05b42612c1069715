package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestProbe: the image's health check succeeds only when every URL answers 200, and says per
// URL what it got.
func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "not serving: replication is not configured", http.StatusInternalServerError)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"alive", []string{srv.URL + "/healthz"}, 0, []string{"/healthz: 200 ok"}},
		{"alive, not serving", []string{srv.URL + "/healthz", srv.URL + "/debug/health"}, 1,
			[]string{"/healthz: 200 ok", "/debug/health: 500 not serving: replication is not configured"}},
		{"no answer", []string{closed.URL + "/healthz"}, 1, []string{"/healthz: no answer"}},
		{"no URL", nil, 2, nil},
		{"not a URL", []string{"127.0.0.1:15000/healthz"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"probe", "--timeout", "2s"}, tc.args...), &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errOut.String())
			}
			for _, want := range tc.out {
				if !strings.Contains(out.String(), want) {
					t.Fatalf("output %q lacks %q", out.String(), want)
				}
			}
		})
	}
}
