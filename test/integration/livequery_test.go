package integration

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
	"github.com/tabletd/tabletd/proto/vtrpcpb"
)

// liveEntry is a /livequeryz?format=json entry.
type liveEntry struct {
	ConnID          uint32
	Caller          string
	Start           string
	DurationSeconds float64
	SQL             string
	Streaming       bool
	InTransaction   bool
}

func liveQueries(t *testing.T, q *qt) []liveEntry {
	t.Helper()
	code, body := httpGet(t, "http://"+q.t.HTTPAddr()+"/livequeryz?format=json")
	var out []liveEntry
	if err := json.Unmarshal([]byte(body), &out); code != 200 || err != nil {
		t.Fatalf("/livequeryz?format=json: %d %v\n%s", code, err, body)
	}
	return out
}

// waitLive waits until a statement with sql shows in /livequeryz and returns its entry.
func waitLive(t *testing.T, q *qt, sql string) liveEntry {
	t.Helper()
	var found liveEntry
	eventually(t, 10*time.Second, sql+" listed in /livequeryz", func() bool {
		for _, e := range liveQueries(t, q) {
			if e.SQL == sql {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func waitGone(t *testing.T, q *qt, connID uint32) {
	t.Helper()
	eventually(t, 10*time.Second, "the killed statement left /livequeryz", func() bool {
		for _, e := range liveQueries(t, q) {
			if e.ConnID == connID {
				return false
			}
		}
		return true
	})
}

// terminate posts to /livequeryz/terminate (the client follows the 303 to /livequeryz).
func terminate(t *testing.T, q *qt, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := http.PostForm("http://"+q.t.HTTPAddr()+"/livequeryz/terminate", form)
	return resp, readBody(t, resp, err)
}

func TestLiveQueryz(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // a failed test must not leave the callers below behind

	// Execute: listed with its caller and SQL, killed from the JSON API.
	const sleepSQL = "select sleep(30) from dual where 1 = :one"
	done := make(chan error, 1)
	go func() {
		_, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
			Query: &querypb.BoundQuery{Sql: sleepSQL, BindVariables: map[string]*querypb.BindVariable{"one": i64(1)}}})
		done <- err
	}()
	e := waitLive(t, q, sleepSQL)
	if e.Caller != "alice" || e.Streaming || e.InTransaction || e.ConnID == 0 || e.DurationSeconds < 0 {
		t.Errorf("entry %+v", e)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Start); err != nil {
		t.Errorf("Start: %v", err)
	}
	killedAt := time.Now()
	resp, body := terminate(t, q, url.Values{"connID": {itoa(int(e.ConnID))}, "format": {"json"}})
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"killed":`+itoa(int(e.ConnID))+`}` {
		t.Fatalf("terminate: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		if code(err) != vtrpcpb.Code_CANCELED {
			t.Fatalf("killed Execute: %v (code %v), want CANCELED", err, code(err))
		}
		t.Logf("Execute failed %v after the kill: %v", time.Since(killedAt).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatal("Execute still running 10s after /livequeryz/terminate")
	}
	waitGone(t, q, e.ConnID)

	// Refusals: an id nothing runs on (say, a replication thread) and a malformed one.
	if resp, body := terminate(t, q, url.Values{"connID": {"4000000000"}}); resp.StatusCode != 404 {
		t.Errorf("bogus connID: %d %s", resp.StatusCode, body)
	}
	if resp, body := terminate(t, q, url.Values{"connID": {"abc"}}); resp.StatusCode != 400 || !strings.Contains(body, "connID") {
		t.Errorf("connID=abc: %d %s", resp.StatusCode, body)
	}

	// StreamExecute: listed as streaming, killed from the HTML page's form (303 back to the list).
	const streamSQL = "select sleep(30) from dual where 2 = 2"
	sdone := make(chan error, 1)
	go func() {
		st, err := q.qs.StreamExecute(ctx, &querypb.StreamExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
			Query: &querypb.BoundQuery{Sql: streamSQL}})
		for err == nil {
			_, err = st.Recv()
		}
		sdone <- err
	}()
	e = waitLive(t, q, streamSQL)
	if !e.Streaming || e.Caller != "alice" {
		t.Errorf("stream entry %+v", e)
	}
	if _, page := httpGet(t, "http://"+q.t.HTTPAddr()+"/livequeryz/"); !strings.Contains(page, "connID="+itoa(int(e.ConnID))) {
		t.Errorf("/livequeryz/ has no kill form for %d:\n%s", e.ConnID, page)
	}
	resp, body = terminate(t, q, url.Values{"connID": {itoa(int(e.ConnID))}})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/livequeryz" || !strings.Contains(body, "<table>") {
		t.Fatalf("terminate from the page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	select {
	case err := <-sdone:
		if errors.Is(err, io.EOF) || code(err) != vtrpcpb.Code_CANCELED {
			t.Fatalf("killed stream: %v (code %v), want CANCELED", err, code(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still running 10s after /livequeryz/terminate")
	}
	waitGone(t, q, e.ConnID)

	// Normal service afterwards, and no connection is left borrowed.
	if v := values(q.mustExec(t, 0, "select 1", nil)); len(v) != 1 || v[0][0] != "1" {
		t.Fatalf("after the kills: %v", v)
	}
	waitIdle(t, q)
}

// TestLiveQueryzTransaction: killing a statement inside a transaction ends the transaction
// (its state is lost with the connection); the pool and the tablet carry on.
func TestLiveQueryzTransaction(t *testing.T) {
	t.Parallel()
	q := newQT(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	q.mustExec(t, 0, "create table t (id int primary key)", nil)
	be, err := q.qs.BeginExecute(ctx, &querypb.BeginExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
		Query: &querypb.BoundQuery{Sql: "insert into t values (1)"}})
	if err != nil || be.Error != nil {
		t.Fatal(err, be.GetError())
	}
	const sleepSQL = "select sleep(30) from t"
	done := make(chan error, 1)
	go func() {
		_, err := q.qs.Execute(ctx, &querypb.ExecuteRequest{Target: q.target, ImmediateCallerId: q.caller,
			Query: &querypb.BoundQuery{Sql: sleepSQL}, TransactionId: be.TransactionId})
		done <- err
	}()
	e := waitLive(t, q, sleepSQL)
	if !e.InTransaction {
		t.Errorf("entry %+v: not shown in a transaction", e)
	}
	if resp, body := terminate(t, q, url.Values{"connID": {itoa(int(e.ConnID))}, "format": {"json"}}); resp.StatusCode != 200 {
		t.Fatalf("terminate: %d %s", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		if code(err) != vtrpcpb.Code_CANCELED {
			t.Fatalf("killed Execute in a transaction: %v (code %v), want CANCELED", err, code(err))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Execute still running 10s after /livequeryz/terminate")
	}
	if _, err := q.exec(t, be.TransactionId, "select 1", nil); code(err) != vtrpcpb.Code_ABORTED && code(err) != vtrpcpb.Code_NOT_FOUND {
		t.Errorf("the killed transaction still answers: %v", err)
	}
	if v := values(q.mustExec(t, 0, "select count(*) from t", nil)); v[0][0] != "0" {
		t.Errorf("the killed transaction's insert is visible: %v", v)
	}
	waitIdle(t, q)
}
