// Package procs starts and stops the child processes of the project's
// harnesses (hack/demo, hack/bench): each child runs in its own process group
// and, on Linux, dies with its parent, so Ctrl-C or a crash of the harness
// leaves nothing behind.
package procs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// StopGrace is how long a child gets to exit after SIGTERM before its
// process group is killed.
const StopGrace = 10 * time.Second

// filePollInterval is how often WaitForFile looks for the file.
const filePollInterval = 100 * time.Millisecond

// Child is a process started in its own process group. On Linux it also dies
// with its parent (parent-death signal), even if the parent is killed.
type Child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts bin with args, env added to this process's environment and
// output appended to logPath.
func Start(name, bin string, args, env []string, logPath string) (*Child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &Child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	return c, nil
}

// Pid is the child's process ID.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed when the child has exited.
func (c *Child) Done() <-chan struct{} { return c.done }

// Exited reports whether the child has ended, and how.
func (c *Child) Exited() (bool, error) {
	select {
	case <-c.done:
		if c.err == nil {
			return true, fmt.Errorf("%s exited", c.name)
		}
		return true, fmt.Errorf("%s exited: %w", c.name, c.err)
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the child's process group, waits up to StopGrace and
// then kills the group. A nil Child is already stopped.
func (c *Child) Stop() error {
	if c == nil {
		return nil
	}
	pgid := c.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(StopGrace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	// Anything the child left in its group goes too.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing %s's process group: %w", c.name, err)
	}
	return nil
}

// WaitForFile waits up to timeout for the child to write path (atomically)
// and returns its content; it fails as soon as the child exits.
func (c *Child) WaitForFile(ctx context.Context, path string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return b, nil
		}
		if gone, err := c.Exited(); gone {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(filePollInterval):
		}
	}
	return nil, fmt.Errorf("%s wrote no %s within %s", c.name, path, timeout)
}
