package procs

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFreeAddrIsBelowTheEphemeralRangeAndBindable(t *testing.T) {
	top := ephemeralStart(ephemeralRangeFile)
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(portText)
		if host != "127.0.0.1" || port < lowestPort || port >= top {
			t.Fatalf("FreeAddr() = %s, want 127.0.0.1 with a port in [%d, %d)", addr, lowestPort, top)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeAddr() = %s, which cannot be bound: %v", addr, err)
		}
		l.Close()
	}
}

func TestEphemeralStart(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, strconv.Itoa(len(content)))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{write("49152\t65535\n"), 49152},
		{write("not a range"), defaultEphemeralStart},
		{filepath.Join(dir, "missing"), defaultEphemeralStart},
	} {
		if got := ephemeralStart(tc.path); got != tc.want {
			t.Errorf("ephemeralStart(%s) = %d, want %d", tc.path, got, tc.want)
		}
	}
}
