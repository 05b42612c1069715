package sidecar

import (
	"errors"
	"strings"
	"testing"

	"github.com/tabletd/tabletd/proto/vtrpcpb"
	"github.com/tabletd/tabletd/rpcerr"
)

func TestValidateName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"_vt", true},
		{"_vt_commerce", true},
		{"sidecar-db", true},
		{"Ünïcode", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("é", 64), true}, // 64 characters, 128 bytes
		{"", false},
		{strings.Repeat("a", 65), false},
		{"a\xffb", false},
		{"trailing ", false},
		{"with`tick", false},
		{"a.b", false},
		{"a/b", false},
		{`a\b`, false},
		{"nul\x00", false},
		{"mysql", false},
		{"INFORMATION_SCHEMA", false},
		{"performance_schema", false},
		{"sys", false},
	}
	for _, c := range cases {
		err := ValidateName(c.name)
		if c.ok {
			if err != nil {
				t.Errorf("ValidateName(%q) = %v, want nil", c.name, err)
			}
			continue
		}
		if !errors.Is(err, rpcerr.OfCode(vtrpcpb.Code_INVALID_ARGUMENT)) {
			t.Errorf("ValidateName(%q) = %v, want an INVALID_ARGUMENT error", c.name, err)
		}
	}
	if got := QuoteName("_vt"); got != "`_vt`" {
		t.Errorf("QuoteName(_vt) = %s", got)
	}
}
