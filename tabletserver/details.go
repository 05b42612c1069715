package tabletserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tabletd/tabletd/proto/topodatapb"
)

// Detail is one line of /debug/status_details: vttablet's kv (Key, Class, Value), where
// Class is healthy, unhappy or unhealthy. Vitess's end-to-end harness reads the first
// entry's Class and Value.
type Detail struct {
	Key   string
	Class string
	Value string
}

// The classes vttablet gives a detail.
const (
	healthyClass   = "healthy"
	unhappyClass   = "unhappy"
	unhealthyClass = "unhealthy"
)

// degradedThreshold is vttablet's --degraded-threshold default: lag above it is "unhappy".
const degradedThreshold = 30 * time.Second

// Details returns the query service's health details as vttablet's state manager and
// health streamer list them: Current State (with the primary term start on a PRIMARY), the
// Reason it does not serve, Lameduck while shutting down, and on other types the
// Replication Lag — "unknown", never a reassuring 0s, when it cannot be measured — and the
// Replication Error.
func (s *Server) Details() []Detail {
	st := s.Status()
	class := unhealthyClass
	name := "Not connected to mysql"
	switch st.State {
	case StateServing:
		class, name = healthyClass, "Serving"
	case StateNotServing, StateShuttingDown:
		class, name = unhappyClass, "Not Serving"
	}
	value := fmt.Sprintf("%v: %v", st.TabletType, name)
	if st.TabletType == topodatapb.TabletType_PRIMARY {
		value += ", " + st.PrimaryTerm.Local().Format("Jan 2, 2006 at 15:04:05 (MST)")
	}
	out := []Detail{{Key: "Current State", Class: class, Value: value}}
	if !st.Serving && st.HealthError != "" {
		out = append(out, Detail{Key: "Reason", Class: unhappyClass, Value: st.HealthError})
	}
	if st.State == StateShuttingDown {
		out = append(out, Detail{Key: "Lameduck", Class: unhealthyClass, Value: "ON"})
	}
	if st.TabletType == topodatapb.TabletType_PRIMARY {
		return out
	}
	h := st.MySQL
	switch {
	case !h.LagKnown:
		out = append(out, Detail{Key: "Replication Lag", Class: unhealthyClass, Value: "unknown"})
		problem := h.ReplicationProblem
		if !h.ReplicationConfigured {
			problem = "replication is not configured"
		}
		if problem != "" {
			out = append(out, Detail{Key: "Replication Error", Class: unhappyClass, Value: problem})
		}
	default:
		lc := healthyClass
		switch {
		case h.Lag > s.cfg.UnhealthyThreshold:
			lc = unhealthyClass
		case h.Lag > degradedThreshold:
			lc = unhappyClass
		}
		out = append(out, Detail{Key: "Replication Lag", Class: lc, Value: fmt.Sprintf("%ds", int64(h.Lag/time.Second))})
	}
	return out
}

// ServeStatusDetails answers /debug/status_details: Details as indented JSON, HTML-escaped,
// as vttablet writes it.
func (s *Server) ServeStatusDetails(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	b, err := json.MarshalIndent(s.Details(), "", " ")
	if err != nil {
		http.Error(w, strings.TrimSpace(err.Error()), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(b)
}
