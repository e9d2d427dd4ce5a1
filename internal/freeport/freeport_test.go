package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestRunIsFreeAndBelowEphemeral: the ports returned can be bound, all n of
// them, and none is one the kernel would give an outgoing connection.
func TestRunIsFreeAndBelowEphemeral(t *testing.T) {
	lo := ephemeralLow()
	for n := 1; n <= MaxRun; n++ {
		p, err := Run(n)
		if err != nil {
			t.Fatal(err)
		}
		if p < Lowest || p+n > lo {
			t.Fatalf("ports %d-%d are outside %d-%d", p, p+n-1, Lowest, lo)
		}
		for i := range n {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				t.Fatalf("port %d of the run at %d: %v", i, p, err)
			}
			ln.Close()
		}
	}
	if _, err := Run(MaxRun + 1); err == nil {
		t.Fatalf("a run of %d ports was given", MaxRun+1)
	}
}
