package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tabletd/tabletd/tablet"
)

// FuzzConfigFile: any --config file is applied or refused with an error naming --config —
// never a panic — and a configuration it yields is validated like the flags' (tablet.New
// refuses what cannot work, with an error).
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"tablet-path: zone1-100\ninit-keyspace: commerce\ninit-shard: \"0\"\ndb-host: 127.0.0.1\n",
		"init-tags:\n  a: b\n  c: 1\nservice-map: [grpc-queryservice, grpc-tabletmanager]\n",
		"port: 15000\ngrpc-port: \"x\"\n", "health_check_interval: 5s\nqueryserver-config-pool-size: -1\n",
		"tablet-path: [unclosed\n", "config: other.yaml\n", "- a\n- b\n", "db-flags: 2048\ndb-ssl-mode: required\n",
		"security-policy: deny-all\npprof-http: true\n", "grpc-auth-mode: static\n", "? [a, b]\n: c\n", "~\n", "*x\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var o options
		fs := newFlagSet(&o)
		if err := fs.Parse([]string{"--topo-global-server-address", "127.0.0.1:1"}); err != nil {
			t.Fatal(err)
		}
		if err := applyConfigFile(fs, path); err != nil {
			return
		}
		cfg, err := o.toConfig(noEnv)
		if err != nil {
			return
		}
		_, _ = tablet.New(cfg, tablet.Deps{})
	})
}
