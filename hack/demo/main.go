// Command demo shows the purchase-policy-controller working without a
// cluster or a Microsoft tenant: it starts a local control plane (envtest's
// kube-apiserver and etcd), the Microsoft 365 simulator with two tenants and
// the real controller binary, applies two policies (Contoso in Enforce,
// Fabrikam in Observe) and walks through adoption, drift correction, a new
// product, a self-service purchase, its takeover and Observe-mode drift,
// printing the `kubectl get tpp -A` table and the status lines after each
// step.
//
// By default it then keeps everything running for the user to try things and
// cleans up on Ctrl-C; --non-interactive exits after the walk-through with
// status 0 only if every step was observed as expected.
//
// It decides what each step checks; it must not change the controller's
// behaviour (it runs the real binary with ordinary flags) nor act on
// Microsoft other than through the simulator's admin API.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// options are the demo's flags.
type options struct {
	root           string
	managerBin     string
	simBin         string
	nonInteractive bool
	stepTimeout    time.Duration
	keepFiles      bool
	prometheusBin  string
}

// bindFlags registers the options on fs.
func (o *options) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.root, "root", "", "repository root (default: found from the working directory)")
	fs.StringVar(&o.managerBin, "manager", "", "controller binary (default: <root>/bin/manager, built if missing)")
	fs.StringVar(&o.simBin, "m365sim", "", "simulator binary (default: <root>/bin/m365sim, built if missing)")
	fs.BoolVar(&o.nonInteractive, "non-interactive", false, "run the walk-through, clean up and exit: 0 only if every step passed")
	fs.DurationVar(&o.stepTimeout, "step-timeout", 60*time.Second, "how long one step may wait for the expected status")
	fs.BoolVar(&o.keepFiles, "keep-files", false, "keep the temp directory (logs, kubeconfig) after exit")
	fs.StringVar(&o.prometheusBin, "prometheus", "", "prometheus binary (e.g. /usr/bin/prometheus): scrape the controller's secure metrics endpoint, evaluate the alert rules, and add a monitoring step")
}

func main() {
	if procs.RunAsGuardedChild() {
		return // not reached: the guarded child execs the real binary
	}
	var o options
	o.bindFlags(flag.CommandLine)
	flag.Parse()
	// The signal stays captured until the very end, so a second Ctrl-C during
	// cleanup cannot leave processes or files behind.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o, os.Stdout)
	stop()
	os.Exit(code)
}

// run sets everything up, walks through the steps and tears everything down;
// it returns the process exit code.
func run(ctx context.Context, o options, out io.Writer) int {
	d, err := newDemo(o, out)
	if err != nil {
		fmt.Fprintln(out, "demo:", err)
		return 2
	}
	defer d.cleanup()
	if err := d.start(ctx); err != nil {
		fmt.Fprintln(out, "demo: setup failed:", err)
		d.showLogTails()
		return 1
	}
	passed := d.walkThrough(ctx)
	if !passed {
		d.showLogTails()
	}
	if o.nonInteractive || ctx.Err() != nil {
		return exitCode(passed)
	}
	d.printTryIt()
	d.waitForInterrupt(ctx)
	return exitCode(passed)
}

func exitCode(passed bool) int {
	if passed {
		return 0
	}
	return 1
}
