package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The smoke runs the harness as make bench does, on 20 tenants with a fast
// simulator, so the harness cannot rot; the real figures come from make
// bench.
const (
	smokeTenants = 20
	smokeTimeout = 4 * time.Minute
	stopTimeout  = time.Minute
)

// bins are the binaries under test.
var bins testsupport.Binaries

func TestMain(m *testing.M) {
	os.Exit(testsupport.MainWithBinaries(m, filepath.Join("..", ".."),
		map[string]string{"bench": "./hack/bench", "manager": "./cmd", "m365sim": "./cmd/m365sim"}, &bins))
}

func benchCommand(ctx context.Context, extra ...string) *exec.Cmd {
	args := append([]string{"-root", bins.Root, "-manager", bins.Paths["manager"], "-m365sim", bins.Paths["m365sim"],
		"-tenants", fmt.Sprint(smokeTenants), "-spec-samples", "5"}, extra...)
	cmd := exec.CommandContext(ctx, bins.Paths["bench"], args...)
	cmd.Dir = bins.Root
	return cmd
}

// TestBenchSmoke runs every phase on 20 tenants and checks what a user of
// make bench reads: each phase converged its policies at the Microsoft
// request floor, the controller's API-server requests were told apart from
// the harness's, reconciles came from the controller's secured metrics, and
// the ceiling, CPU and memory were measured.
func TestBenchSmoke(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	// At 5 ms a call the controller's sequential PUTs would outrun
	// Microsoft's per-tenant rate (at 150 ms they do not), so the smoke
	// turns throttling off and expects the floor exactly.
	out, err := benchCommand(ctx, "-latency", "5ms", "-sim-args", "--throttle-rate=0", "-json", jsonPath).CombinedOutput()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bench output:\n%s", out)
		}
	})
	if err != nil {
		t.Fatalf("bench failed: %v", err)
	}
	if !strings.Contains(string(out), "Microsoft requests, observed/floor") {
		t.Error("the table was not printed")
	}
	var r report
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	assertPhases(t, &r)
	assertControllerArgs(t, &r)
	if r.Ceiling == nil || r.Ceiling.CreatesPerSecond <= 0 || r.Ceiling.StatusPatchesPerSec <= 0 || r.Ceiling.SmallStatusPatchesPerSec <= 0 || r.Ceiling.StatusUpdatesPerSec <= 0 {
		t.Errorf("ceiling not measured: %+v", r.Ceiling)
	}
	if o := r.Objects; o == nil || o.Policies != smokeTenants || o.MeanStatusBytes <= 0 || o.MeanBytes <= o.MeanStatusBytes {
		t.Errorf("policy sizes not measured: %+v", r.Objects)
	}
	for _, name := range processNames {
		if r.PeakRSS[name] <= 0 {
			t.Errorf("no peak RSS for %s: %v", name, r.PeakRSS)
		}
	}
}

func assertPhases(t *testing.T, r *report) {
	t.Helper()
	want := map[string]int{"cold": smokeTenants, "resync": smokeTenants, "drift": 1, "spec": 5}
	if len(r.Phases) != len(want) {
		t.Fatalf("%d phases, want %d", len(r.Phases), len(want))
	}
	for _, p := range r.Phases {
		if p.Policies != want[p.Name] {
			t.Errorf("%s: %d policies, want %d", p.Name, p.Policies, want[p.Name])
		}
		if p.Microsoft.Ratio != 1 || p.Microsoft.Early != 0 {
			t.Errorf("%s: Microsoft requests/floor %.2f, %d early, want 1.00 and 0: %v", p.Name, p.Microsoft.Ratio, p.Microsoft.Early, p.Microsoft.Excess)
		}
		if p.ReconcilesFrom != metricReconciles || p.Reconciles < p.Policies {
			t.Errorf("%s: %d reconciles from %q, want at least %d from the controller's metrics", p.Name, p.Reconciles, p.ReconcilesFrom, p.Policies)
		}
		if n := p.APIServer.Requests[statusWrite]; n < p.Policies {
			t.Errorf("%s: %d status writes by the controller's user in the audit log, want at least %d", p.Name, n, p.Policies)
		}
		if n := p.APIServer.Requests["create tenantpurchasepolicies"]; n != 0 {
			t.Errorf("%s: the harness's %d creates were counted as the controller's", p.Name, n)
		}
		if p.PeakRSSBytes <= 0 || p.FractionOfCeiling <= 0 {
			t.Errorf("%s: peak RSS %d, fraction of ceiling %.2f: not measured", p.Name, p.PeakRSSBytes, p.FractionOfCeiling)
		}
	}
	// CPU time has a 10 ms resolution: only adoption is sure to show some.
	if cold := r.Phases[0]; cold.CPUSeconds <= 0 || cold.ProcessCPU["kube-apiserver"] <= 0 {
		t.Errorf("cold: controller CPU %.2fs, processes %v: not measured", cold.CPUSeconds, cold.ProcessCPU)
	}
	spec := r.Phases[3]
	if spec.Latency == nil || spec.Latency.Samples != 5 || spec.Latency.P50Seconds <= 0 || spec.Latency.P99Seconds < spec.Latency.P50Seconds {
		t.Errorf("spec change latency: %+v", spec.Latency)
	}
}

// assertControllerArgs checks the controller ran with config/manager's
// args: each kept verbatim except bind addresses (moved to local ports) and
// leader election (which needs a namespace outside a cluster).
func assertControllerArgs(t *testing.T, r *report) {
	t.Helper()
	container, err := deployedContainer(filepath.Join(bins.Root, "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	deployed := container.Args
	if env, _ := memoryLimitEnv(container.Resources.Limits); env != "" && !slices.Contains(r.Controller.Env, env) {
		t.Errorf("controller env %v lacks %s: the pod's soft memory limit", r.Controller.Env, env)
	}
	if !slices.Equal(deployed, r.Controller.Deployed) {
		t.Errorf("deployed args %v, config/manager has %v", r.Controller.Deployed, deployed)
	}
	for _, arg := range deployed {
		name, _, _, _ := splitFlag(arg)
		if strings.HasSuffix(name, "bind-address") || name == "leader-elect" {
			continue
		}
		if !slices.Contains(r.Controller.Args, arg) {
			t.Errorf("config/manager's %s is missing from the controller's args %v", arg, r.Controller.Args)
		}
	}
	if r.Controller.Concurrency < 1 {
		t.Errorf("concurrency %d", r.Controller.Concurrency)
	}
}

// benchFiles is the "bench files: <dir>" line the harness prints first.
var benchFiles = regexp.MustCompile(`^bench files: (\S+)$`)

// TestBenchInterruptStopsEverything sends Ctrl-C during the cold phase and
// checks that the harness exits and leaves no process and no temp directory
// behind.
func TestBenchInterruptStopsEverything(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	cmd := benchCommand(ctx)
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
			t.Logf("bench output:\n%s", output.String())
		}
	})
	dir, err := waitForCold(stdout, output)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(output) }()
	waitErr, running, err := testsupport.Interrupt(cmd, stopTimeout)
	var exit *exec.ExitError
	switch {
	case err != nil:
		t.Fatal(err)
	case running:
		t.Fatalf("bench still running %s after Ctrl-C", stopTimeout)
	case !errors.As(waitErr, &exit):
		t.Errorf("bench exited with %v after Ctrl-C, want a failure exit (interrupted)", waitErr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp directory %s still exists (stat: %v)", dir, err)
	}
	if procs := testsupport.ProcessesMentioning(dir); len(procs) > 0 {
		t.Errorf("processes still running from %s:\n%s", dir, strings.Join(procs, "\n"))
	}
}

// waitForCold reads the harness's output until the cold phase has started
// and returns the temp directory it announced.
func waitForCold(stdout interface{ Read([]byte) (int, error) }, copyTo *testsupport.SyncBuffer) (string, error) {
	s := bufio.NewScanner(stdout)
	dir := ""
	for s.Scan() {
		line := s.Text()
		fmt.Fprintln(copyTo, line)
		if m := benchFiles.FindStringSubmatch(line); m != nil {
			dir = m[1]
		}
		if strings.HasPrefix(line, "cold:") {
			if dir == "" {
				return "", errors.New("the harness never announced its temp directory")
			}
			return dir, nil
		}
	}
	return "", errors.New("the harness ended before the cold phase")
}
