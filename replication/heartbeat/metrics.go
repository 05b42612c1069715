package heartbeat

import (
	"errors"
	"fmt"
	"maps"

	"github.com/prometheus/client_golang/prometheus"
)

// constLabels are the labels on every metric of one writer or reader: Deps.Labels plus the
// config's keyspace and shard (which win), so two tablets of different shards can share a
// registry.
func constLabels(d Deps, keyspace, shard string) prometheus.Labels {
	l := maps.Clone(d.Labels)
	if l == nil {
		l = prometheus.Labels{}
	}
	l["keyspace"], l["shard"] = keyspace, shard
	return l
}

// register registers cs on reg (nil: nothing), undoing the ones already registered when one
// fails, so a failed constructor leaves the registry as it was.
func register(reg prometheus.Registerer, what string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("heartbeat %s: metrics already registered for these labels "+
					"(one %s per keyspace/shard per registry): %w", what, what, err)
			}
			return fmt.Errorf("heartbeat %s: registering metrics: %w", what, err)
		}
	}
	return nil
}

// Error kinds, the values of the kind label.
const (
	kindReadOnly = "read_only" // errno 1290: the server is read_only
	kindNoRow    = "no_row"    // the heartbeat row does not exist (yet)
	kindError    = "error"     // anything else
)
