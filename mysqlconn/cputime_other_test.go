//go:build !unix

package mysqlconn

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }
