package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// Versions of the control plane hack/envtest-bins.sh builds.
const (
	kubeVersion = "v1.37.2"
	etcdVersion = "v3.6.16"
)

// Timeouts of the setup.
const (
	simReadyTimeout = 30 * time.Second
	apiCallTimeout  = 15 * time.Second
	pollInterval    = 250 * time.Millisecond
)

// demoNamespace holds the demo's policies and Secrets.
const demoNamespace = "m365"

// secretKey is the key of the client secret in the demo's Secrets.
const secretKey = "clientSecret"

// demo is one run: its temp directory, the processes it started and the
// clients it talks to them with.
type demo struct {
	o    options
	out  io.Writer
	root string
	dir  string

	env        *envtest.Environment
	kubeconfig string
	kube       client.Client
	tables     *rest.RESTClient

	simProc, ctrlProc *procs.Child
	mon               *monitoring
	sim               *m365sim.AdminClient
	ready             m365sim.ReadyInfo
	tenants           []*tenant

	// purchased is the subscription bought in the purchase step.
	purchased m365sim.Subscription
}

// tenant is one simulated tenant and the policy that manages it.
type tenant struct {
	policy   string
	id       string
	name     string
	clientID string
	secret   string
	mode     v1.Mode
	// products replaces the simulator's catalogue (nil: every default product, Enabled).
	products []m365sim.Product
	domain   string
}

// newDemo finds the repository and creates the temp directory.
func newDemo(o options, out io.Writer) (*demo, error) {
	root, err := procs.FindRoot(o.root)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tpp-demo-")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "demo files: %s\n", dir)
	logf.SetLogger(logr.Discard()) // envtest's own logging is noise here
	mon, err := newMonitoring(o.prometheusBin)
	if err != nil {
		return nil, err
	}
	return &demo{o: o, out: out, root: root, dir: dir, tenants: demoTenants(), mon: mon}, nil
}

// demoTenants are Contoso (every product Enabled, as Microsoft ships them;
// managed in Enforce) and Fabrikam (hardened by hand except Copilot; watched
// in Observe).
func demoTenants() []*tenant {
	fabrikamProducts := m365sim.DefaultProducts()
	for i := range fabrikamProducts {
		fabrikamProducts[i].PolicyValue = m365sim.PolicyDisabled
		if fabrikamProducts[i].ID == productCopilot {
			fabrikamProducts[i].PolicyValue = m365sim.PolicyEnabled
		}
	}
	return []*tenant{
		{policy: "contoso", id: "72f988bf-86f1-41af-91ab-2d7cd011db47", name: "Contoso", clientID: "11111111-2222-3333-4444-555555555555",
			secret: newSecret(), mode: v1.ModeEnforce},
		{policy: "fabrikam", id: "0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a", name: "Fabrikam", clientID: "22222222-3333-4444-5555-666666666666",
			secret: newSecret(), mode: v1.ModeObserve, products: fabrikamProducts},
	}
}

func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "demo~" + hex.EncodeToString(b)
}

// path returns a path inside the demo's temp directory.
func (d *demo) path(name ...string) string {
	return filepath.Join(append([]string{d.dir}, name...)...)
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "==> "+format+"\n", args...)
}

// start brings up the control plane, the simulator and the controller, and
// applies the Secrets and policies.
func (d *demo) start(ctx context.Context) error {
	assets, err := d.ensureAssets(ctx)
	if err != nil {
		return err
	}
	manager, sim, err := d.ensureBinaries(ctx)
	if err != nil {
		return err
	}
	for _, run := range []func() error{
		func() error { return d.startControlPlane(assets) },
		func() error { return d.startSimulator(ctx, sim) },
		func() error { return d.startController(manager) },
		func() error { return d.applyPolicies(ctx) },
		func() error { return d.startPrometheus(ctx) },
	} {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := run(); err != nil {
			return err
		}
	}
	return nil
}

// ensureAssets returns the directory of kube-apiserver and etcd: from
// KUBEBUILDER_ASSETS when it holds them, otherwise from hack/envtest-bins.sh,
// which builds them from Go modules on the first run; its progress is shown.
func (d *demo) ensureAssets(ctx context.Context) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" && haveControlPlane(dir) {
		return dir, nil
	}
	cached := filepath.Join(d.root, "bin", "envtest", kubeVersion+"-"+etcdVersion)
	if !haveControlPlane(cached) {
		d.say("building kube-apiserver %s and etcd %s from Go modules (first run only, ~5 minutes on 2 cores)...", kubeVersion, etcdVersion)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(d.root, "hack", "envtest-bins.sh"))
	cmd.Dir = d.root
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return "", err
	}
	scanner := bufio.NewScanner(stderr)
	for scanner.Scan() {
		fmt.Fprintln(d.out, "    "+scanner.Text())
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("hack/envtest-bins.sh: %w", err)
	}
	dir := strings.TrimSpace(stdout.String())
	if !haveControlPlane(dir) {
		return "", fmt.Errorf("hack/envtest-bins.sh printed %q, which lacks kube-apiserver or etcd", dir)
	}
	return dir, nil
}

func haveControlPlane(dir string) bool {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if fi, err := os.Stat(filepath.Join(dir, bin)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// ensureBinaries returns the controller and simulator binaries, building
// missing ones into bin/.
func (d *demo) ensureBinaries(ctx context.Context) (manager, sim string, err error) {
	manager, sim = d.o.managerBin, d.o.simBin
	if manager == "" {
		manager = filepath.Join(d.root, "bin", "manager")
		if err := d.buildIfMissing(ctx, manager, "./cmd"); err != nil {
			return "", "", err
		}
	}
	if sim == "" {
		sim = filepath.Join(d.root, "bin", "m365sim")
		if err := d.buildIfMissing(ctx, sim, "./cmd/m365sim"); err != nil {
			return "", "", err
		}
	}
	return manager, sim, nil
}

func (d *demo) buildIfMissing(ctx context.Context, bin, pkg string) error {
	if _, err := os.Stat(bin); err == nil {
		return nil
	}
	d.say("building %s from %s (the controller compiles the Microsoft Graph SDK: ~3 minutes cold)...", bin, pkg)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = d.root
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// startControlPlane starts etcd and kube-apiserver with their state in the
// temp directory, installs the CRD and writes a kubeconfig.
func (d *demo) startControlPlane(assets string) error {
	d.say("starting a local control plane (kube-apiserver + etcd from %s)", assets)
	apiserverPath, etcdPath, err := procs.GuardBinaries(d.path("bin"), assets)
	if err != nil {
		return fmt.Errorf("preparing control-plane binaries: %w", err)
	}
	for _, sub := range []string{"etcd", "apiserver"} {
		if err := os.MkdirAll(d.path(sub), 0o700); err != nil {
			return err
		}
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return err
	}
	d.env = &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     []string{filepath.Join(d.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	d.env.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath, DataDir: d.path("etcd")}
	api := d.env.ControlPlane.GetAPIServer()
	api.Path, api.CertDir = apiserverPath, d.path("apiserver")
	cfg, err := d.env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	d.kubeconfig = d.path("kubeconfig")
	if err := os.WriteFile(d.kubeconfig, d.env.KubeConfig, 0o600); err != nil {
		return err
	}
	if d.kube, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if d.tables, err = tableClient(cfg); err != nil {
		return err
	}
	d.say("control plane ready at %s; kubeconfig: %s", cfg.Host, d.kubeconfig)
	return nil
}

// startSimulator starts m365sim with the demo's tenants and waits for its
// ready file.
func (d *demo) startSimulator(ctx context.Context, bin string) error {
	d.say("starting the Microsoft 365 simulator with tenants %s", d.tenantNames())
	fleet := m365sim.FleetFile{}
	for _, t := range d.tenants {
		fleet.Tenants = append(fleet.Tenants, m365sim.FleetTenant{ID: t.id, Name: t.name, SampleDirectory: true, Products: t.products,
			Apps: []m365sim.AppRequest{{ClientID: t.clientID, Secret: t.secret, Permissions: m365sim.AllPermissions}}})
	}
	if err := writeJSON(d.path("tenants.json"), fleet); err != nil {
		return err
	}
	var err error
	d.simProc, err = procs.Start("m365sim", bin, []string{
		"--tenants-file", d.path("tenants.json"), "--ca-file", d.path("sim-ca.pem"), "--ready-file", d.path("sim-ready.json"),
	}, nil, d.path("m365sim.log"))
	if err != nil {
		return err
	}
	ready, err := d.simProc.WaitForFile(ctx, d.path("sim-ready.json"), simReadyTimeout)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(ready, &d.ready); err != nil {
		return fmt.Errorf("simulator ready file: %w", err)
	}
	for i, t := range d.ready.Tenants {
		d.tenants[i].domain = t.Domain
	}
	if d.sim, err = m365sim.NewAdminClient(d.ready.AdminURL, d.path("sim-ca.pem"), apiCallTimeout); err != nil {
		return err
	}
	d.say("simulator ready: licensing %s, graph %s, authority %s, admin %s/_sim/", d.ready.Licensing, d.ready.Graph, d.ready.AuthorityHost, d.ready.AdminURL)
	return nil
}

func (d *demo) tenantNames() string {
	var names []string
	for _, t := range d.tenants {
		names = append(names, fmt.Sprintf("%s (%s)", t.name, t.id))
	}
	return strings.Join(names, " and ")
}

// startController starts the real controller binary pointed at the
// simulator by flags, with the demo's kubeconfig.
func (d *demo) startController(bin string) error {
	d.say("starting the controller %s (log: %s)", bin, d.path("controller.log"))
	var err error
	d.ctrlProc, err = procs.Start("controller", bin, append([]string{
		"--licensing-endpoint", d.ready.Licensing,
		"--graph-endpoint", d.ready.Graph,
		"--authority-host", d.ready.AuthorityHost,
		"--ca-file", d.path("sim-ca.pem"),
		"--health-probe-bind-address", "0",
	}, d.mon.metricsFlags()...), []string{"KUBECONFIG=" + d.kubeconfig}, d.path("controller.log"))
	return err
}

// applyPolicies creates the namespace, one Secret per tenant and the two
// policies: Contoso in Enforce (default Disabled, Copilot Enabled, tracking
// every minute) and Fabrikam in Observe (default Disabled).
func (d *demo) applyPolicies(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}}
	for _, t := range d.tenants {
		objs = append(objs,
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: t.policy + "-app", Namespace: demoNamespace}, StringData: map[string]string{secretKey: t.secret}},
			policyFor(t))
	}
	for _, o := range objs {
		if err := d.kube.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	d.say("applied namespace %s, Secrets contoso-app and fabrikam-app, policies contoso (Enforce) and fabrikam (Observe)", demoNamespace)
	return nil
}

// policyFor builds the policy of a demo tenant.
func policyFor(t *tenant) *v1.TenantPurchasePolicy {
	track := true
	p := &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: t.policy, Namespace: demoNamespace},
		Spec: v1.TenantPurchasePolicySpec{
			TenantID: t.id,
			TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:     v1.Auth{ClientID: t.clientID, ClientSecretRef: &v1.SecretKeyRef{Name: t.policy + "-app", Key: secretKey}},
				Mode:     t.mode,
				Default:  v1.RulePolicy(v1.PolicyDisabled),
				Interval: metav1.Duration{Duration: time.Minute},
				Subscriptions: v1.SubscriptionTracking{Track: &track,
					RefundWarning: &metav1.Duration{Duration: 2 * time.Hour}},
			},
		},
	}
	if t.mode == v1.ModeEnforce {
		p.Spec.Products = []v1.ProductRule{{ProductID: productCopilot, Policy: v1.RulePolicy(v1.PolicyEnabled)}}
	}
	return p
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// cleanup stops the controller, the simulator and the control plane (in that
// order) and removes the temp directory.
func (d *demo) cleanup() {
	d.say("cleaning up")
	for _, c := range []*procs.Child{d.ctrlProc, d.mon.process(), d.simProc} {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(d.out, "    ", err)
		}
	}
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			fmt.Fprintln(d.out, "     stopping the control plane:", err)
		}
	}
	if d.o.keepFiles {
		d.say("kept %s", d.dir)
		return
	}
	if err := os.RemoveAll(d.dir); err != nil {
		fmt.Fprintln(d.out, "     removing", d.dir+":", err)
		return
	}
	d.say("stopped the controller, the simulator and the control plane; removed %s", d.dir)
}

// showLogTails prints the end of the controller's and simulator's logs after
// a failure.
func (d *demo) showLogTails() {
	for _, name := range []string{"controller.log", "m365sim.log", "prometheus.log"} {
		b, err := os.ReadFile(d.path(name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		fmt.Fprintf(d.out, "--- last lines of %s ---\n", name)
		for _, l := range lines[max(0, len(lines)-20):] {
			fmt.Fprintln(d.out, l)
		}
	}
}

// printTryIt tells the user how to explore the running demo.
func (d *demo) printTryIt() {
	contoso := d.tenants[0]
	ca := d.path("sim-ca.pem")
	admin := d.ready.AdminURL + "/_sim"
	fmt.Fprintf(d.out, `
The demo keeps running. Try it yourself:

  export KUBECONFIG=%s
  kubectl get tpp -A
  kubectl -n %s get tpp contoso -o yaml
  kubectl get tpps -A

Simulator admin API (act like a person in the admin center): %s/
  curl --cacert %s %s/tenants/%s/products
  curl --cacert %s -X PUT -d '{"policyValue":"Enabled"}' %s/tenants/%s/products/%s
  curl --cacert %s -X POST -d '{"skuPartNumber":"%s"}' %s/tenants/%s/purchases
  curl --cacert %s -X DELETE %s/tenants/%s/customers/%s   # Northwind leaves the partner

Then ask for a sync now:
  kubectl -n %s annotate tpp contoso --overwrite %s="$(date +%%s)"

Controller log: %s
%s
Press Ctrl-C to stop the demo and clean up.
`, d.kubeconfig, demoNamespace, admin,
		ca, admin, contoso.id,
		ca, admin, contoso.id, productVisioPlan2,
		ca, m365sim.SkuCopilot, admin, contoso.id,
		ca, admin, contoso.id, northwindID,
		demoNamespace, v1.RequestedAtAnnotation, d.path("controller.log"), d.mon.tryIt(d.path("prometheus-token")))
}

// waitForInterrupt blocks until Ctrl-C (or SIGTERM), or until the
// controller or the simulator dies.
func (d *demo) waitForInterrupt(ctx context.Context) {
	select {
	case <-ctx.Done():
		fmt.Fprintln(d.out)
	case <-d.ctrlProc.Done():
		fmt.Fprintln(d.out, "demo: the controller exited; see", d.path("controller.log"))
	case <-d.simProc.Done():
		fmt.Fprintln(d.out, "demo: the simulator exited; see", d.path("m365sim.log"))
	}
}
