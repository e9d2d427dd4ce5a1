// Package freeport picks loopback ports for the programs that tests and
// benchmarks start: ports a child vw process binds after the picker has let
// go of them.
//
// A port from ":0" does not do for that. The kernel hands the same range to
// outgoing connections, and between the picker's Close and the child's bind
// any connection of a test running beside it can take the port: the child
// then fails with "address already in use". Ports are picked below the
// ephemeral range instead, where only another picker can land on them.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Lowest is the lowest port picked, above the registered services a test
// machine may run; MaxRun is the most consecutive ports Run returns.
const Lowest, MaxRun = 10000, 8

// Pick returns a loopback port nobody listens on now.
func Pick() (int, error) {
	return Run(1)
}

// Run returns the first of n consecutive loopback ports nobody listens on
// now.
func Run(n int) (int, error) {
	if n < 1 || n > MaxRun {
		return 0, fmt.Errorf("freeport: %d consecutive ports asked for, 1 to %d are", n, MaxRun)
	}
	top := ephemeralLow() - MaxRun
	for range 1000 {
		p := Lowest + rand.IntN(top-Lowest)
		if free(p, n) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("freeport: no %d free loopback ports in %d-%d", n, Lowest, top)
}

// Addr returns "127.0.0.1:port" for a port from Pick.
func Addr() (string, error) {
	p, err := Pick()
	return "127.0.0.1:" + strconv.Itoa(p), err
}

func free(p, n int) bool {
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// ephemeralLow is the first port the kernel hands to outgoing connections:
// Linux's ip_local_port_range, or its default where that cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if lo, err := strconv.Atoi(f[0]); err == nil && lo > Lowest+1000 {
			return lo
		}
	}
	return 32768
}
