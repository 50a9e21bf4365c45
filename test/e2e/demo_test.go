// Package e2e runs the built binaries as a user would: the demo (hack/demo)
// starts a local control plane, the Microsoft 365 simulator and the real
// controller, and walks through what the product does; the controller also
// runs under its installed RBAC alone. It decides what a user-visible pass
// is; it must not reach into the controller's packages or fake what a user
// would see.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// Limits of one demo run.
const (
	demoTimeout     = 5 * time.Minute
	shutdownTimeout = time.Minute
)

// demoSteps is how many steps the walk-through has (without --prometheus).
const demoSteps = 8

// tableHeader is the `kubectl get tpp -A` header: NAMESPACE first, then the
// CRD's print columns, upper-cased and aligned.
var tableHeader = regexp.MustCompile(`(?m)^NAMESPACE +NAME +TENANT +MODE +READY +DRIFTED +MANAGED +SELF-SERVICE +LAST SYNC +AGE$`)

// setTableHeader is the `kubectl get tpps -A` header of the policy set step.
var setTableHeader = regexp.MustCompile(`(?m)^NAMESPACE +NAME +TENANTS +READY +DRIFTED +SELF-SERVICE +LAST DISCOVERY +AGE$`)

// setTableRow is the set's row: three tenants, three Ready.
var setTableRow = regexp.MustCompile(`(?m)^m365 +baseline +3 +3 +\d+ +0 +\S+ +\S+$`)

// demoDir is the "demo files: <dir>" line the demo prints first.
var demoDir = regexp.MustCompile(`(?m)^demo files: (\S+)$`)

// bins are the binaries under test.
var bins testsupport.Binaries

func TestMain(m *testing.M) {
	os.Exit(testsupport.MainWithBinaries(m, filepath.Join("..", ".."),
		map[string]string{"demo": "./hack/demo", "manager": "./cmd", "m365sim": "./cmd/m365sim"}, &bins))
}

// demoCommand returns the demo command with the binaries under test.
func demoCommand(ctx context.Context, extra ...string) *exec.Cmd {
	args := append([]string{"--root", bins.Root, "--manager", bins.Paths["manager"], "--m365sim", bins.Paths["m365sim"]}, extra...)
	cmd := exec.CommandContext(ctx, bins.Paths["demo"], args...)
	cmd.Dir = bins.Root
	return cmd
}

// TestDemoNonInteractive runs the walk-through the way `make demo
// DEMO_FLAGS=--non-interactive` does: every step must be observed, the table
// must be kubectl's, and nothing may be left behind.
func TestDemoNonInteractive(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout)
	defer cancel()
	out, err := demoCommand(ctx, "--non-interactive").CombinedOutput()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	})
	if err != nil {
		t.Fatalf("demo --non-interactive failed: %v", err)
	}
	text := string(out)
	for i := 1; i <= demoSteps; i++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^\[OK\] %d/%d `, i, demoSteps)).MatchString(text) {
			t.Errorf("no [OK] line for step %d/%d", i, demoSteps)
		}
	}
	if !strings.Contains(text, fmt.Sprintf("All %d steps OK.", demoSteps)) {
		t.Error(`no "All steps OK" line`)
	}
	if n := len(tableHeader.FindAllString(text, -1)); n != demoSteps {
		t.Errorf("found %d `kubectl get tpp -A` table headers, want one per step (%d)", n, demoSteps)
	}
	if !setTableHeader.MatchString(text) || !setTableRow.MatchString(text) {
		t.Error("no `kubectl get tpps -A` table with the baseline set and its three Ready tenants")
	}
	if strings.Contains(text, "Ctrl-C") {
		t.Error("the non-interactive mode asked for Ctrl-C")
	}
	assertNothingLeft(t, announcedDir(t, text))
}

// TestDemoInteractiveCtrlC starts the demo as a user would, with a real
// Prometheus watching (--prometheus), waits for it to ask for Ctrl-C, checks
// what Prometheus scraped, sends SIGINT and checks that every process it
// started (Prometheus too) and its temp directory are gone.
func TestDemoInteractiveCtrlC(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), demoTimeout+monitoringTimeout+shutdownTimeout)
	defer cancel()
	cmd := demoCommand(ctx, "--prometheus", prometheusBinary(t))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	output := &testsupport.SyncBuffer{}
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", output.String())
		}
	})
	lines := make(chan string)
	go scanLines(io.TeeReader(stdout, output), lines)

	dir, err := waitForPrompt(ctx, lines)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	t.Run("prometheus", func(t *testing.T) { checkMonitoring(t, ctx, output.String(), dir) })
	go func() {
		for range lines { // drain the cleanup messages
		}
	}()
	waitErr, running, err := testsupport.Interrupt(cmd, shutdownTimeout)
	switch {
	case err != nil:
		t.Fatal(err)
	case running:
		t.Fatalf("demo still running %s after Ctrl-C", shutdownTimeout)
	case waitErr != nil:
		t.Errorf("demo exited with %v after Ctrl-C, want 0 (every step passed)", waitErr)
	}
	assertNothingLeft(t, dir)
}

// scanLines sends r's lines to ch and closes it at EOF.
func scanLines(r io.Reader, ch chan<- string) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		ch <- s.Text()
	}
	close(ch)
}

// waitForPrompt reads the demo's output until it asks for Ctrl-C and returns
// the temp directory it announced.
func waitForPrompt(ctx context.Context, lines <-chan string) (string, error) {
	dir := ""
	for {
		select {
		case <-ctx.Done():
			return "", errors.New("the demo never asked for Ctrl-C")
		case line, ok := <-lines:
			if !ok {
				return "", errors.New("the demo ended before asking for Ctrl-C")
			}
			if m := demoDir.FindStringSubmatch(line); m != nil {
				dir = m[1]
			}
			if strings.Contains(line, "Press Ctrl-C") {
				if dir == "" {
					return "", errors.New("the demo never announced its temp directory")
				}
				return dir, nil
			}
		}
	}
}

func announcedDir(t *testing.T, output string) string {
	t.Helper()
	m := demoDir.FindStringSubmatch(output)
	if m == nil {
		t.Fatal(`the demo never printed "demo files: <dir>"`)
	}
	return m[1]
}

// assertNothingLeft checks that dir is gone and that no process mentions it
// on its command line (etcd's data dir, the API server's cert dir, the
// controller's --ca-file, the simulator's --tenants-file all live there).
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	if !strings.HasPrefix(filepath.Base(dir), "tpp-demo-") {
		t.Fatalf("announced directory %q is not the demo's", dir)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp directory %s still exists (stat: %v)", dir, err)
	}
	if procs := testsupport.ProcessesMentioning(dir); len(procs) > 0 {
		t.Errorf("processes still running from %s:\n%s", dir, strings.Join(procs, "\n"))
	}
}
