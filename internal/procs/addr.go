package procs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports FreeAddr picks from: at least lowestPort, below the kernel's
// ephemeral range (the default when the range cannot be read).
const (
	lowestPort            = 10000
	defaultEphemeralStart = 32768
	ephemeralRangeFile    = "/proc/sys/net/ipv4/ip_local_port_range"
	freeAddrAttempts      = 100
)

// FreeAddr returns a loopback address nothing listens on, for a child to bind
// later. The port comes from below the kernel's ephemeral range: a port the
// kernel hands out (a listen on port 0, any outgoing connection) can be taken
// by another process between this check and the child's bind, as once
// happened to the demo's Prometheus; below the range only another explicit
// bind can take it.
func FreeAddr() (string, error) {
	top := ephemeralStart(ephemeralRangeFile)
	if top <= lowestPort {
		return "", fmt.Errorf("the ephemeral port range starts at %d, leaving no port below it from %d", top, lowestPort)
	}
	for range freeAddrAttempts {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowestPort+rand.IntN(top-lowestPort)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return "", err
		}
		return addr, nil
	}
	return "", errors.New("no free loopback port found below the ephemeral range")
}

// ephemeralStart is the first port of the kernel's ephemeral range, read from
// path ("32768\t60999"), or the Linux default when it cannot be read.
func ephemeralStart(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return defaultEphemeralStart
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return defaultEphemeralStart
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return defaultEphemeralStart
	}
	return n
}
