package replication

import (
	"errors"
	"testing"
)

func TestDetectFlavor(t *testing.T) {
	tests := []struct {
		version     string
		wantFlavor  Flavor
		wantVersion Version
		wantErr     error
	}{
		{"10.11.19-MariaDB-0+deb12u1", FlavorMariaDB, Version{10, 11, 19}, nil},
		{"5.5.5-10.11.19-MariaDB-0+deb12u1", FlavorMariaDB, Version{10, 11, 19}, nil},
		{"10.4.0-MariaDB", FlavorMariaDB, Version{10, 4, 0}, nil},
		{"10.6.21-MariaDB-log", FlavorMariaDB, Version{10, 6, 21}, nil},
		{"11.4.5-MariaDB-ubu2404", FlavorMariaDB, Version{11, 4, 5}, nil},
		{"5.5.5-11.8.2-MariaDB", FlavorMariaDB, Version{11, 8, 2}, nil},
		{" 10.11.19-mariadb ", FlavorMariaDB, Version{10, 11, 19}, nil},
		{"8.0.36", FlavorMySQL80, Version{8, 0, 36}, nil},
		{"8.0.21-log", FlavorMySQL80, Version{8, 0, 21}, nil},
		{"8.0.36-0ubuntu0.22.04.1", FlavorMySQL80, Version{8, 0, 36}, nil},
		{"8.0.36-28", FlavorMySQL80, Version{8, 0, 36}, nil},
		{"8.4.3", FlavorMySQL84, Version{8, 4, 3}, nil},
		{"8.4.0-log", FlavorMySQL84, Version{8, 4, 0}, nil},
		{"8.3.0", FlavorMySQL84, Version{8, 3, 0}, nil},
		{"9.1.0", FlavorMySQL84, Version{9, 1, 0}, nil},
		{"5.7.44-log", FlavorUnknown, Version{5, 7, 44}, ErrUnsupportedServer},
		{"5.6.51", FlavorUnknown, Version{5, 6, 51}, ErrUnsupportedServer},
		{"10.3.39-MariaDB", FlavorUnknown, Version{10, 3, 39}, ErrUnsupportedServer},
		{"5.5.5-10.2.44-MariaDB", FlavorUnknown, Version{10, 2, 44}, ErrUnsupportedServer},
		{"10.11.19", FlavorUnknown, Version{10, 11, 19}, ErrUnsupportedServer},
		{"", FlavorUnknown, Version{}, ErrUnsupportedServer},
		{"garbage", FlavorUnknown, Version{}, ErrUnsupportedServer},
		{"8.0", FlavorUnknown, Version{}, ErrUnsupportedServer},
		{"8..1", FlavorUnknown, Version{}, ErrUnsupportedServer},
		{"8.0.1.2", FlavorUnknown, Version{}, ErrUnsupportedServer},
		{"99999999.0.0", FlavorUnknown, Version{}, ErrUnsupportedServer},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			flavor, version, err := DetectFlavor(tc.version)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("DetectFlavor(%q) error = %v, want %v", tc.version, err, tc.wantErr)
			}
			if flavor != tc.wantFlavor || version != tc.wantVersion {
				t.Errorf("DetectFlavor(%q) = %v, %v; want %v, %v", tc.version, flavor, version, tc.wantFlavor, tc.wantVersion)
			}
		})
	}
}

func TestDetectFlavorVersionComment(t *testing.T) {
	flavor, _, err := detectFlavor("10.11.19", "mariadb.org binary distribution")
	if err != nil || flavor != FlavorMariaDB {
		t.Fatalf("detectFlavor with MariaDB comment = %v, %v; want mariadb", flavor, err)
	}
}

func TestFlavorMethods(t *testing.T) {
	tests := []struct {
		flavor       Flavor
		name         string
		mariadb      bool
		mysql        bool
		position     PositionFlavor
		checkFailure bool
	}{
		{FlavorUnknown, "unknown", false, false, "", true},
		{FlavorMariaDB, "mariadb", true, false, PositionMariaDB, false},
		{FlavorMySQL80, "mysql80", false, true, PositionMySQL56, false},
		{FlavorMySQL84, "mysql84", false, true, PositionMySQL56, false},
		{Flavor(42), "Flavor(42)", false, false, "", true},
		{Flavor(-1), "Flavor(-1)", false, false, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.flavor.String(); got != tc.name {
				t.Errorf("String() = %q, want %q", got, tc.name)
			}
			if tc.flavor.IsMariaDB() != tc.mariadb || tc.flavor.IsMySQL() != tc.mysql {
				t.Errorf("IsMariaDB/IsMySQL = %v/%v, want %v/%v", tc.flavor.IsMariaDB(), tc.flavor.IsMySQL(), tc.mariadb, tc.mysql)
			}
			if got := tc.flavor.PositionFlavor(); got != tc.position {
				t.Errorf("PositionFlavor() = %q, want %q", got, tc.position)
			}
			if err := tc.flavor.check(); errors.Is(err, ErrUnknownFlavor) != tc.checkFailure {
				t.Errorf("check() = %v, want failure %v", err, tc.checkFailure)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b Version
		want int
	}{
		{Version{8, 0, 22}, Version{8, 0, 22}, 0},
		{Version{8, 0, 21}, Version{8, 0, 22}, -1},
		{Version{8, 1, 0}, Version{8, 0, 99}, 1},
		{Version{10, 4, 0}, Version{9, 9, 9}, 1},
	}
	for _, tc := range tests {
		if got := tc.a.Compare(tc.b); got != tc.want {
			t.Errorf("%v.Compare(%v) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := (Version{10, 11, 19}).String(); got != "10.11.19" {
		t.Errorf("String() = %q", got)
	}
}
