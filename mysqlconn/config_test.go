package mysqlconn

import (
	"context"
	"testing"
	"time"

	"github.com/tabletd/tabletd/proto/querypb"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Network: "tcp", Address: "127.0.0.1:3306", User: "vt_app"}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr bool
	}{
		{"defaults", func(*Config) {}, false},
		{"unix inferred", func(c *Config) { c.Network, c.Address = "", "/run/mysqld/mysqld.sock" }, false},
		{"tcp inferred", func(c *Config) { c.Network = "" }, false},
		{"collation", func(c *Config) { c.Charset = "utf8mb4_0900_ai_ci" }, false},
		{"charset in capitals", func(c *Config) { c.Charset = "UTF8MB4" }, false},
		{"unknown network", func(c *Config) { c.Network = "udp" }, true},
		{"tcp without port", func(c *Config) { c.Address = "127.0.0.1" }, true},
		{"empty socket", func(c *Config) { c.Network, c.Address = "unix", "" }, true},
		{"no user", func(c *Config) { c.User = "" }, true},
		{"unknown charset", func(c *Config) { c.Charset = "klingon" }, true},
		{"collation id above 255", func(c *Config) { c.Charset = "utf8mb4_uca1400_ai_ci" }, true},
		{"negative connect timeout", func(c *Config) { c.ConnectTimeout = -time.Second }, true},
		{"negative cancel grace", func(c *Config) { c.CancelGrace = -time.Second }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			err := c.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if _, cerr := Connect(context.Background(), c); cerr == nil {
					t.Fatal("Connect accepted an invalid config")
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Address: "/tmp/s.sock", User: "u"}.withDefaults()
	if c.Network != "unix" || c.Charset != DefaultCharset || c.ConnectTimeout != DefaultConnectTimeout || c.CancelGrace != DefaultCancelGrace {
		t.Fatalf("defaults not applied: %+v", c)
	}
	coll, ok := lookupCollation(c.Charset)
	if !ok || coll.id != 45 {
		t.Fatalf("utf8mb4 → %+v, want utf8mb4_general_ci (45), as vttablet against MariaDB", coll)
	}
}

func TestFieldDetailMatchesIncludedFields(t *testing.T) {
	tests := []struct {
		d    FieldDetail
		incl querypb.ExecuteOptions_IncludedFields
	}{
		{FieldsTypeAndName, querypb.ExecuteOptions_TYPE_AND_NAME},
		{FieldsTypeOnly, querypb.ExecuteOptions_TYPE_ONLY},
		{FieldsAll, querypb.ExecuteOptions_ALL},
	}
	for _, tt := range tests {
		if FieldDetail(tt.incl) != tt.d || tt.d.validate() != nil {
			t.Errorf("%v: FieldDetail %d", tt.incl, tt.d)
		}
	}
	for _, bad := range []FieldDetail{-1, 4} {
		if bad.validate() == nil {
			t.Errorf("FieldDetail %d accepted", bad)
		}
	}
}
