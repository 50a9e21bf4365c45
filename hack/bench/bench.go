package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// Settling after a phase: the phase's trailing requests (Events after the
// last status patch) count for it; the controller is quiet once no request
// but a lease renewal reached the API server for settleQuiet.
const (
	settleQuiet = 2 * time.Second
	settleMax   = 30 * time.Second
	settlePoll  = 250 * time.Millisecond
)

// bench is one run: its temp directory, the processes and what it measured.
type bench struct {
	o    options
	out  io.Writer
	root string
	dir  string

	cp      *controlPlane
	sim     *simulator
	ctrl    *procs.Child
	args    controllerArgs
	scraper *scraper
	prof    *profiler // nil without -profile
	fleet   *fleet
	track   *tracker
	// stopTrack ends the informer's watch before the API server stops.
	stopTrack context.CancelFunc
	names     []string // policy of fleet.tenants[i]

	// flipProduct is what the drift phase enables by hand; differing is
	// how many products the fleet's policy changes at adoption.
	flipProduct string
	differing   int

	rep    report
	commit string // HEAD when the run began
}

func newBench(o options, out io.Writer) (*bench, error) {
	root, err := procs.FindRoot(o.root)
	if err != nil {
		return nil, err
	}
	if o.managerBin == "" {
		o.managerBin = filepath.Join(root, "bin", "manager")
	}
	if o.simBin == "" {
		o.simBin = filepath.Join(root, "bin", "m365sim")
	}
	for _, bin := range []string{o.managerBin, o.simBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%w (run make build)", err)
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, errors.New("KUBEBUILDER_ASSETS is unset: run through make bench")
	}
	dir, err := os.MkdirTemp("", "tpp-bench-")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "bench files: %s\n", dir)
	logf.SetLogger(logr.Discard()) // envtest's and the cache's logging is noise here
	// The commit is read now: the binaries were built from it, and the tree
	// may move on during a long run.
	b := &bench{o: o, out: out, root: root, dir: dir, commit: gitCommit(root)}
	b.rep.Tenants = o.tenants
	return b, nil
}

func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.out, format+"\n", args...)
}

// start brings up the control plane, the simulator with the fleet, the
// policies' namespace and Secret, the controller and the policy informer.
func (b *bench) start(ctx context.Context) error {
	var err error
	if b.fleet, err = newFleet(b.o.tenants); err != nil {
		return err
	}
	for i := range b.fleet.tenants {
		b.names = append(b.names, fmt.Sprintf("tenant-%05d", i))
	}
	b.say("starting the control plane (kube-apiserver + etcd, audit log at Metadata level)")
	if b.cp, err = startControlPlane(ctx, b.root, b.dir, os.Getenv("KUBEBUILDER_ASSETS"), b.o.profileSeconds > 0); err != nil {
		return err
	}
	b.say("starting %s with %d tenants sharing one partner app", b.o.simBin, b.o.tenants)
	if b.sim, err = startSimulator(ctx, b.o.simBin, b.dir, b.fleet, b.o.latency, strings.Fields(b.o.simArgs)); err != nil {
		return err
	}
	b.rep.Simulator = b.sim.describe(b.o.simBin)
	if err := b.provision(ctx); err != nil {
		return err
	}
	if err := b.startController(ctx); err != nil {
		return err
	}
	var trackCtx context.Context
	trackCtx, b.stopTrack = context.WithCancel(ctx)
	b.track, err = startTracker(trackCtx, b.cp.kubeClientConfig(), benchNamespace)
	return err
}

// provision creates the policies' namespace and the partner's one Secret,
// and learns from the simulator what adoption has to change.
func (b *bench) provision(ctx context.Context) error {
	if err := b.cp.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}); err != nil {
		return err
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: partnerSecret, Namespace: benchNamespace},
		StringData: map[string]string{secretKey: b.fleet.secret}}
	if err := b.cp.kube.Create(ctx, secret); err != nil {
		return err
	}
	products, err := b.sim.admin.Products(ctx, b.fleet.tenants[0])
	if err != nil {
		return err
	}
	b.differing, b.flipProduct = differingAtAdoption(products)
	return nil
}

// controllerStartTimeout bounds the wait for the controller's metrics.
const controllerStartTimeout = time.Minute

// startController starts bin/manager with config/manager's args and waits
// for its metrics endpoint.
func (b *bench) startController(ctx context.Context) error {
	container, err := deployedContainer(filepath.Join(b.root, "config", "manager", "manager.yaml"))
	if err != nil {
		return err
	}
	deployed := container.Args
	flags, err := flagsOf(b.o.managerBin)
	if err != nil {
		return err
	}
	b.args, err = buildControllerArgs(deployed, flags, endpointFlags{
		licensing: b.sim.info.Licensing, graph: b.sim.info.Graph, authority: b.sim.info.AuthorityHost,
		caFile: b.sim.info.CAFile, kubeconfig: b.cp.kubeconfig,
	}, controllerNamespace)
	if err != nil {
		return err
	}
	if env, change := memoryLimitEnv(container.Resources.Limits); env != "" {
		b.args.Env = append(b.args.Env, env)
		b.args.Changes = append(b.args.Changes, change)
	}
	if b.o.profileSeconds > 0 {
		addr, err := addPprofArg(&b.args, flags)
		if err != nil {
			return err
		}
		b.prof = &profiler{seconds: b.o.profileSeconds, dir: b.path("profiles"), controller: addr, apiserver: b.cp.admin}
	}
	b.rep.Controller = b.args
	b.say("starting %s %s", b.o.managerBin, strings.Join(b.args.Args, " "))
	for _, c := range b.args.Changes {
		b.say("  %s", c)
	}
	if b.ctrl, err = procs.Start("controller", b.o.managerBin, b.args.Args, b.args.Env, b.path("controller.log")); err != nil {
		return err
	}
	if addr := argValue(b.args.Args, "metrics-bind-address"); addr != "" && addr != "0" {
		b.scraper = newScraper(addr, b.cp.scraperToken, boolArg(b.args.Args, "metrics-secure", flags["metrics-secure"] == "true"))
		return b.waitForMetrics(ctx)
	}
	return nil
}

// waitForMetrics waits until the controller serves its metrics, so every
// phase counts its reconciles from the first one.
func (b *bench) waitForMetrics(ctx context.Context) error {
	deadline := time.Now().Add(controllerStartTimeout)
	for {
		_, err := b.scraper.scrape(ctx)
		if err == nil {
			return nil
		}
		if gone, exitErr := b.ctrl.Exited(); gone {
			return exitErr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the controller's metrics did not answer within %s: %w", controllerStartTimeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
}

// alive fails once the controller or the simulator has exited.
func (b *bench) alive() error {
	for _, c := range []*procs.Child{b.ctrl, b.sim.proc} {
		if gone, err := c.Exited(); gone {
			return err
		}
	}
	return nil
}

func (b *bench) path(name string) string { return filepath.Join(b.dir, name) }

// cleanup stops the controller, the simulator and the control plane (in that
// order) and removes the temp directory.
func (b *bench) cleanup() {
	if b.stopTrack != nil {
		b.stopTrack()
	}
	var simProc *procs.Child
	if b.sim != nil {
		simProc = b.sim.proc
	}
	for _, c := range []*procs.Child{b.ctrl, simProc} {
		if err := c.Stop(); err != nil {
			b.say("  %v", err)
		}
	}
	if err := b.cp.stop(); err != nil {
		b.say("  stopping the control plane: %v", err)
	}
	if b.o.keepFiles {
		b.say("kept %s", b.dir)
		return
	}
	if err := os.RemoveAll(b.dir); err != nil {
		b.say("  removing %s: %v", b.dir, err)
	}
}

// showLogTails prints the end of the controller's and simulator's logs
// after a failure (not after Ctrl-C).
func (b *bench) showLogTails(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	for _, name := range []string{"controller.log", "m365sim.log"} {
		data, err := os.ReadFile(b.path(name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		b.say("--- last lines of %s ---", name)
		for _, l := range lines[max(0, len(lines)-20):] {
			b.say("%s", l)
		}
	}
}

// settle reads the audit log into t until the controller has been quiet.
func (b *bench) settle(ctx context.Context, t *auditTally) error {
	deadline := time.Now().Add(settleMax)
	for {
		if err := b.cp.audit.read(t); err != nil {
			return err
		}
		if time.Since(t.lastActivity) >= settleQuiet || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
}
