// Command bench measures the controller the way a user deploys it: it starts
// a local control plane (envtest's kube-apiserver and etcd, with an audit
// log), the Microsoft 365 simulator (bin/m365sim, its own process, 150 ms
// per call, Microsoft-style throttling) with a fleet of tenants that share
// one partner app and one Secret, and the controller (bin/manager, its own
// process) with exactly the args of config/manager/manager.yaml plus the
// endpoint flags. It then runs four phases, cold adoption, resync (the
// reconcile-now annotation on every policy), drift (5% of the tenants
// changed by hand) and spec changes, and measures, in the same run, how many
// creates and status patches per second the same API server accepts from a
// plain client (the ceiling). With -soak it keeps flipping products and
// injecting 429s for that long before the ceiling. It prints a table and
// writes JSON (-json, -results).
//
//	make bench                      # bin/bench -tenants 1000
//	make bench-results TENANTS=10000  # also hack/bench/results/<date>-N10000.json
//	make soak                       # bin/bench -tenants 50 -soak 5m
//
// It measures and reports; it must not change how the controller runs: the
// real binary with config/manager's args (only -profile adds a flag, and the
// output says so). make test runs only its smoke, on 20 tenants.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// options are the harness's flags.
type options struct {
	root, managerBin, simBin string
	tenants                  int
	latency                  time.Duration
	simArgs                  string
	driftPercent             float64
	specSamples              int
	specRate                 float64
	ceilingObjects           int
	phaseTimeout             time.Duration
	soak                     time.Duration
	jsonPath                 string
	results                  bool
	keepFiles                bool
	profileSeconds           int
}

func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.root, "root", "", "repository root (default: found from the working directory)")
	fs.StringVar(&o.managerBin, "manager", "", "controller binary (default: <root>/bin/manager; make build)")
	fs.StringVar(&o.simBin, "m365sim", "", "simulator binary (default: <root>/bin/m365sim; make build)")
	fs.IntVar(&o.tenants, "tenants", 1000, "tenants, one policy each")
	fs.DurationVar(&o.latency, "latency", 150*time.Millisecond, "simulator latency per call (m365sim --latency)")
	fs.StringVar(&o.simArgs, "sim-args", "", "extra m365sim flags, space-separated (e.g. \"--latency-jitter=0 --throttle-rate=0\")")
	fs.Float64Var(&o.driftPercent, "drift-percent", 5, "percentage of tenants changed by hand in the drift phase")
	fs.IntVar(&o.specSamples, "spec-samples", 100, "policies whose spec changes in the spec phase (at most -tenants)")
	fs.Float64Var(&o.specRate, "spec-rate", 10, "spec changes per second in the spec phase")
	fs.IntVar(&o.ceilingObjects, "ceiling-objects", 2000, "policies created and status patches sent to measure the ceiling (at most -tenants)")
	fs.DurationVar(&o.phaseTimeout, "phase-timeout", 0, "longest wait of one phase (0: 2m plus 1s per tenant)")
	fs.DurationVar(&o.soak, "soak", 0, "after the phases, flip products and inject 429s for this long (0: no soak)")
	fs.StringVar(&o.jsonPath, "json", "", "write the report as JSON to this file")
	fs.BoolVar(&o.results, "results", false, "also write hack/bench/results/<date>-N<tenants>.json with the machine and the command")
	fs.BoolVar(&o.keepFiles, "keep-files", false, "keep the temp directory (logs, audit log, kubeconfig)")
	fs.IntVar(&o.profileSeconds, "profile", 0, "take CPU profiles of the controller (adds --pprof-bind-address), the kube-apiserver and the harness for this many seconds from the start of each phase, into <files>/profiles (0: none; implies -keep-files)")
}

func (o *options) validate() error {
	switch {
	case o.tenants < 1:
		return errors.New("-tenants must be at least 1")
	case o.driftPercent <= 0 || o.driftPercent > 100:
		return errors.New("-drift-percent must be in (0, 100]")
	case o.specSamples < 1 || o.specRate <= 0:
		return errors.New("-spec-samples and -spec-rate must be positive")
	case o.ceilingObjects < 1:
		return errors.New("-ceiling-objects must be positive")
	case o.profileSeconds < 0:
		return errors.New("-profile must not be negative")
	}
	if o.profileSeconds > 0 {
		o.keepFiles = true
	}
	o.specSamples = min(o.specSamples, o.tenants)
	o.ceilingObjects = min(o.ceilingObjects, o.tenants)
	if o.phaseTimeout == 0 {
		o.phaseTimeout = 2*time.Minute + time.Duration(o.tenants)*time.Second
	}
	return nil
}

func main() {
	if procs.RunAsGuardedChild() {
		return // not reached: the guarded child execs kube-apiserver or etcd
	}
	var o options
	o.bindFlags(flag.CommandLine)
	flag.Parse()
	// Ctrl-C cancels ctx: every wait returns and every child is stopped. The
	// signal stays captured until the end, so a second Ctrl-C during cleanup
	// cannot leave processes behind.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run sets everything up, runs the phases, reports and tears down.
func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	b, err := newBench(o, out)
	if err != nil {
		return err
	}
	defer b.cleanup()
	if err := b.start(ctx); err != nil {
		b.showLogTails(ctx)
		return fmt.Errorf("setup: %w", err)
	}
	if err := b.runPhases(ctx); err != nil {
		b.showLogTails(ctx)
		return err
	}
	return b.finish(ctx, strings.Join(append([]string{"bin/bench"}, os.Args[1:]...), " "))
}
