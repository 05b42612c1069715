package grpcserver

import "testing"

func TestTuningValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Tuning
		ok   bool
		opts int
	}{
		{"default", DefaultTuning(), true, 3},
		{"grpc defaults", Tuning{}, true, 0},
		{"workers only", Tuning{StreamWorkers: 8}, true, 1},
		{"negative workers", Tuning{StreamWorkers: -1}, false, 0},
		{"too many workers", Tuning{StreamWorkers: 1<<16 + 1}, false, 0},
		{"window below HTTP/2's", Tuning{InitialWindowSize: 1024}, false, 0},
		{"conn window below HTTP/2's", Tuning{InitialConnWindowSize: minWindowSize - 1}, false, 0},
		{"windows at HTTP/2's", Tuning{InitialWindowSize: minWindowSize, InitialConnWindowSize: minWindowSize}, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok {
				if n := len(tc.t.options()); n != tc.opts {
					t.Fatalf("options() has %d entries, want %d", n, tc.opts)
				}
			}
		})
	}
}
