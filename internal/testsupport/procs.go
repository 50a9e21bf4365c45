package testsupport

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// ProcessesMentioning lists "pid: cmdline" of the processes whose command
// line contains s: a harness that cleaned up leaves none that mention its
// temp directory.
func ProcessesMentioning(s string) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		out = append(out, pid+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

// SkipIfShort skips a test that starts processes (a control plane, the
// simulator, the controller) under go test -short.
func SkipIfShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane, the simulator and the controller")
	}
}

// Interrupt sends SIGINT to cmd, as Ctrl-C in a terminal does, and waits up
// to timeout for it to exit. It returns what cmd.Wait returned; if cmd is
// still running after timeout it is killed and stillRunning is true.
func Interrupt(cmd *exec.Cmd, timeout time.Duration) (waitErr error, stillRunning bool, err error) {
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return nil, false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err, false, nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		return <-done, true, nil
	}
}
