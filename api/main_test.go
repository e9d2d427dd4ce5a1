package api

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the api package starts (ingest, preview loops, the
// control loop, and the destinations and muxers behind the rules) must be
// gone when its test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
