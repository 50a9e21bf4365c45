package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
	"github.com/tenantpolicy/purchase-policy-controller/test/install"
)

// Limits of one RBAC run.
const (
	rbacTimeout     = 4 * time.Minute
	rbacWaitTimeout = 90 * time.Second
)

// rbacCase is one install of the controller: the manifests it is applied
// from, where its policies live and, in namespace-scoped mode, a namespace
// (and a shard) it was not given.
type rbacCase struct {
	source   install.Source
	policyNS string
	// labels select the shard the Deployment's --watch-label-selector names.
	labels map[string]string
	// outsideNS is a namespace the controller was not given ("" in cluster mode).
	outsideNS string
	// otherShard labels a policy of a watched namespace another shard owns.
	otherShard map[string]string
}

// TestControllerRunsWithItsOwnRBAC installs the controller's manifests on an
// API server that has nothing but the CRDs and runs the real controller binary with a kubeconfig
// that impersonates its ServiceAccount, so every request is authorized by
// the installed RBAC and admitted by the installed token-audience policy
// exactly as in a cluster. The controller is started with the rendered
// Deployment's own flags (only addresses, the simulator's endpoints and CA
// and the Lease namespace are added). It must adopt a tenant (client secret),
// use workload identity (TokenRequest), write back a delegated refresh
// token, record Events, lead through its Lease, serve metrics to an allowed
// scraper only, release a Restore finalizer, and never be refused by the API
// server. In namespace-scoped mode, a policy outside its namespaces or its
// shard gets nothing: it is never written and its tenant never called.
func TestControllerRunsWithItsOwnRBAC(t *testing.T) {
	testsupport.SkipIfShort(t)
	cases := []rbacCase{
		{source: install.SourceNamed("kustomize build config/default"), policyNS: "m365"},
		{source: install.SourceNamed("helm template -f ci/namespace-scoped-values.yaml"), policyNS: "tenants-a",
			labels: map[string]string{"shard": "a"}, outsideNS: "tenants-c", otherShard: map[string]string{"shard": "c"}},
	}
	for _, c := range cases {
		t.Run(c.source.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), rbacTimeout)
			defer cancel()
			r := newRBACRun(ctx, t, c)
			r.startController(ctx, t)
			r.checkPolicies(ctx, t)
			r.checkLeaderElection(ctx, t)
			r.checkScrapesAuthorized(ctx, t)
			if c.outsideNS != "" {
				r.checkOutsideGetsNothing(ctx, t)
			}
			r.checkRestoreReleasesFinalizer(ctx, t)
			if log := r.log.String(); strings.Contains(log, "forbidden") {
				t.Errorf("the API server refused the controller something its RBAC should allow:\n%s", forbiddenLines(log))
			}
		})
	}
}

// rbacTenant is one simulated tenant and its policy.
type rbacTenant struct {
	policy, id, clientID string
	auth                 v1.Auth
	labels               map[string]string
	namespace            string
}

// rbacRun is one case's API server, simulator and controller.
type rbacRun struct {
	c          rbacCase
	cfg        *rest.Config
	kubeconfig []byte
	admin      client.Client
	objs       []*unstructured.Unstructured
	deployArgs []string
	sim        *m365sim.Server
	caFile     string
	dir        string
	log        *testsupport.SyncBuffer
	metricsURL string

	secretApp, workload, delegated, outside, otherShard rbacTenant
	refreshToken                                        string
	// createdVersion is each policy's resourceVersion when created.
	createdVersion map[string]string
}

func newRBACRun(ctx context.Context, t *testing.T, c rbacCase) *rbacRun {
	t.Helper()
	env, err := install.StartAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	r := &rbacRun{c: c, cfg: env.Config, kubeconfig: env.Environment.KubeConfig, dir: t.TempDir(), log: &testsupport.SyncBuffer{}}
	if r.admin, err = install.NewClient(env.Config); err != nil {
		t.Fatal(err)
	}
	r.installManifests(ctx, t)
	r.startSimulator(t)
	r.createPolicies(ctx, t)
	return r
}

// installManifests applies the Prometheus Operator's CRDs and every object
// of the source, for real.
func (r *rbacRun) installManifests(ctx context.Context, t *testing.T) {
	t.Helper()
	crds, err := install.PrometheusOperatorCRDs()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := r.c.source.Render()
	if err != nil {
		t.Fatal(err)
	}
	namespaces := append([]string{r.c.source.Namespace, r.c.policyNS}, r.c.source.Watched...)
	if r.c.outsideNS != "" {
		namespaces = append(namespaces, r.c.outsideNS)
	}
	if err := install.EnsureNamespaces(ctx, r.admin, namespaces...); err != nil {
		t.Fatal(err)
	}
	if err := install.Apply(ctx, r.admin, append(crds, objs...), false); err != nil {
		t.Fatal(err)
	}
	r.objs = objs
	d, err := install.Deployment(objs)
	if err != nil {
		t.Fatal(err)
	}
	r.deployArgs = d.Spec.Template.Spec.Containers[0].Args
}

// startSimulator starts the Microsoft 365 simulator in-process with one
// tenant per way of authenticating.
func (r *rbacRun) startSimulator(t *testing.T) {
	t.Helper()
	r.caFile = filepath.Join(r.dir, "sim-ca.pem")
	sim, err := m365sim.New(m365sim.Options{CAFile: r.caFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	r.sim = sim
	issuer, jwks, err := testsupport.ServiceAccountIssuer(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := r.c.policyNS
	r.secretApp = rbacTenant{policy: "contoso", id: "72f988bf-86f1-41af-91ab-2d7cd011db47", clientID: "11111111-2222-3333-4444-555555555555", namespace: ns, labels: r.c.labels,
		auth: v1.Auth{ClientSecretRef: &v1.SecretKeyRef{Name: "contoso-app", Key: "clientSecret"}}}
	r.workload = rbacTenant{policy: "northwind", id: "3c1d2b4a-7e8f-4a6b-8c9d-0e1f2a3b4c5d", clientID: "33333333-4444-5555-6666-777777777777", namespace: ns, labels: r.c.labels,
		auth: v1.Auth{WorkloadIdentity: &v1.WorkloadIdentity{ServiceAccountName: "m365-northwind"}}}
	r.delegated = rbacTenant{policy: "tailspin", id: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", clientID: "44444444-5555-6666-7777-888888888888", namespace: ns, labels: r.c.labels,
		auth: v1.Auth{RefreshTokenRef: &v1.SecretKeyRef{Name: "tailspin-delegated", Key: "refreshToken"}}}
	r.outside = rbacTenant{policy: "fabrikam", id: "0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a", clientID: "22222222-3333-4444-5555-666666666666", namespace: r.c.outsideNS, labels: r.c.labels,
		auth: v1.Auth{ClientSecretRef: &v1.SecretKeyRef{Name: "fabrikam-app", Key: "clientSecret"}}}
	r.otherShard = rbacTenant{policy: "litware", id: "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b", clientID: "55555555-6666-7777-8888-999999999999", namespace: ns, labels: r.c.otherShard,
		auth: v1.Auth{ClientSecretRef: &v1.SecretKeyRef{Name: "litware-app", Key: "clientSecret"}}}
	for _, tn := range r.tenants() {
		if _, err := sim.AddTenant(m365sim.TenantConfig{ID: tn.id}); err != nil {
			t.Fatal(err)
		}
		app := m365sim.App{ClientID: tn.clientID, Permissions: m365sim.AllPermissions}
		switch {
		case tn.auth.ClientSecretRef != nil:
			app.Secret = "secret-of-" + tn.policy
		case tn.auth.WorkloadIdentity != nil:
			app.Federated = &m365sim.FederatedCredential{Issuer: issuer, JWKS: jwks,
				Subject: "system:serviceaccount:" + tn.namespace + ":" + tn.auth.WorkloadIdentity.ServiceAccountName}
		}
		if err := sim.RegisterApp(tn.id, app); err != nil {
			t.Fatal(err)
		}
	}
	if r.refreshToken, err = sim.RegisterDelegatedUser(r.delegated.id, r.delegated.clientID, []string{m365sim.RoleBillingAdmin}); err != nil {
		t.Fatal(err)
	}
}

// tenants are the case's tenants: the three the controller must serve and,
// in namespace-scoped mode, the two it must not.
func (r *rbacRun) tenants() []rbacTenant {
	ts := []rbacTenant{r.secretApp, r.workload, r.delegated}
	if r.c.outsideNS != "" {
		ts = append(ts, r.outside, r.otherShard)
	}
	return ts
}

// createPolicies creates each tenant's credentials and policy as an
// administrator would. contoso is Enforce with deletionPolicy Restore.
func (r *rbacRun) createPolicies(ctx context.Context, t *testing.T) {
	t.Helper()
	track := true
	r.createdVersion = map[string]string{}
	for _, tn := range r.tenants() {
		var cred client.Object
		switch {
		case tn.auth.ClientSecretRef != nil:
			cred = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tn.auth.ClientSecretRef.Name, Namespace: tn.namespace},
				StringData: map[string]string{"clientSecret": "secret-of-" + tn.policy}}
		case tn.auth.WorkloadIdentity != nil:
			cred = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: tn.auth.WorkloadIdentity.ServiceAccountName, Namespace: tn.namespace,
				Annotations: map[string]string{auth.WorkloadIdentityClientIDAnnotation: tn.clientID}}}
		default:
			cred = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: tn.auth.RefreshTokenRef.Name, Namespace: tn.namespace},
				StringData: map[string]string{"refreshToken": r.refreshToken}}
		}
		a := tn.auth
		a.ClientID = tn.clientID
		p := &v1.TenantPurchasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: tn.policy, Namespace: tn.namespace, Labels: tn.labels},
			Spec: v1.TenantPurchasePolicySpec{TenantID: tn.id, TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth: a, Mode: v1.ModeObserve, Default: v1.RulePolicy(v1.PolicyDisabled), Subscriptions: v1.SubscriptionTracking{Track: &track}}},
		}
		if tn.policy == r.secretApp.policy {
			p.Spec.Mode, p.Spec.DeletionPolicy = v1.ModeEnforce, v1.DeletionRestore
		}
		for _, o := range []client.Object{cred, p} {
			if err := r.admin.Create(ctx, o); err != nil {
				t.Fatalf("creating %T %s/%s: %v", o, tn.namespace, o.GetName(), err)
			}
		}
		r.createdVersion[tn.policy] = p.ResourceVersion
	}
}

// controllerArgs are the rendered Deployment's container args, then what a
// process outside the cluster needs: local addresses, the simulator's
// endpoints and CA, the leader election and ownership Lease namespace (in a
// pod, its own). Later flags win.
func (r *rbacRun) controllerArgs(t *testing.T) []string {
	t.Helper()
	args := slices.Clone(r.deployArgs)
	if !slices.Contains(args, "--leader-elect") {
		t.Fatalf("the Deployment does not enable leader election: %v", args)
	}
	metricsAddr := freeAddr(t)
	r.metricsURL = "https://" + metricsAddr + "/metrics"
	ep := r.sim.Endpoints()
	return append(args,
		"--metrics-bind-address="+metricsAddr,
		"--health-probe-bind-address="+freeAddr(t),
		"--licensing-endpoint="+ep.Licensing, "--graph-endpoint="+ep.Graph, "--authority-host="+ep.AuthorityHost,
		"--ca-file="+r.caFile,
		"--leader-election-namespace="+r.c.source.Namespace,
		"--lease-namespace="+r.c.source.Namespace,
	)
}

// startController runs the controller binary under test as its
// ServiceAccount.
func (r *rbacRun) startController(ctx context.Context, t *testing.T) {
	t.Helper()
	kubeconfig := filepath.Join(r.dir, "kubeconfig")
	if err := install.WriteImpersonatingKubeconfig(r.kubeconfig, r.c.source.Username(), kubeconfig); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bins.Paths["manager"], r.controllerArgs(t)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = shutdownTimeout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("controller log:\n%s", r.log.String())
		}
	})
}

// waitFor retries check (monitoring_test.go's eventually) for at most
// rbacWaitTimeout and fails the test with its last error.
func waitFor(ctx context.Context, t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, rbacWaitTimeout)
	defer cancel()
	if err := eventually(ctx, func() error { return check(ctx) }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (r *rbacRun) policy(ctx context.Context, tn rbacTenant) (*v1.TenantPurchasePolicy, error) {
	var p v1.TenantPurchasePolicy
	err := r.admin.Get(ctx, client.ObjectKey{Namespace: tn.namespace, Name: tn.policy}, &p)
	return &p, err
}

// checkPolicies: each way of authenticating works with the installed RBAC.
func (r *rbacRun) checkPolicies(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, tn := range []rbacTenant{r.secretApp, r.workload, r.delegated} {
		waitFor(ctx, t, tn.policy+" Ready", func(ctx context.Context) error {
			p, err := r.policy(ctx, tn)
			if err != nil {
				return err
			}
			if c := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("Ready is %+v", c)
			}
			return nil
		})
	}
	waitFor(ctx, t, "the rotated refresh token written back", func(ctx context.Context) error {
		var s corev1.Secret
		if err := r.admin.Get(ctx, client.ObjectKey{Namespace: r.delegated.namespace, Name: r.delegated.auth.RefreshTokenRef.Name}, &s); err != nil {
			return err
		}
		if got := string(s.Data["refreshToken"]); got == r.refreshToken || got == "" {
			return fmt.Errorf("the Secret still holds the refresh token it was given")
		}
		return nil
	})
	waitFor(ctx, t, "an Adopted Event on contoso", func(ctx context.Context) error {
		return r.hasEvent(ctx, r.secretApp.namespace, v1.EventAdopted, r.secretApp.policy)
	})
}

// hasEvent finds an events.k8s.io Event with the reason about the object.
func (r *rbacRun) hasEvent(ctx context.Context, ns, reason, regarding string) error {
	var events eventsv1.EventList
	if err := r.admin.List(ctx, &events, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range events.Items {
		if e.Reason == reason && e.Regarding.Name == regarding {
			return nil
		}
	}
	return fmt.Errorf("no %s Event about %s in %s among %d", reason, regarding, ns, len(events.Items))
}

// checkLeaderElection: the controller holds the Lease the Deployment names
// and recorded becoming leader.
func (r *rbacRun) checkLeaderElection(ctx context.Context, t *testing.T) {
	t.Helper()
	name := flagValue(r.deployArgs, "--leader-election-id")
	if name == "" {
		name = "purchase-policy-controller.tenantpolicy.io" // the binary's default without a shard
	}
	waitFor(ctx, t, "the leader Lease "+name, func(ctx context.Context) error {
		var l coordinationv1.Lease
		if err := r.admin.Get(ctx, client.ObjectKey{Namespace: r.c.source.Namespace, Name: name}, &l); err != nil {
			return err
		}
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			return fmt.Errorf("Lease %s has no holder", name)
		}
		return nil
	})
	waitFor(ctx, t, "a LeaderElection Event", func(ctx context.Context) error {
		var events corev1.EventList
		if err := r.admin.List(ctx, &events, client.InNamespace(r.c.source.Namespace)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == "LeaderElection" {
				return nil
			}
		}
		return fmt.Errorf("none among %d Events", len(events.Items))
	})
}

// checkScrapesAuthorized: the controller authenticates and authorizes
// scrapers with its own RBAC (TokenReview, SubjectAccessReview): a
// ServiceAccount bound to the metrics-reader ClusterRole gets 200, one that
// is not 403. (Its metrics server is up: policies are Ready.)
func (r *rbacRun) checkScrapesAuthorized(ctx context.Context, t *testing.T) {
	t.Helper()
	reader := ""
	for _, cr := range install.Find(r.objs, "ClusterRole") {
		if strings.HasSuffix(cr.GetName(), "metrics-reader") {
			reader = cr.GetName()
		}
	}
	if reader == "" {
		t.Fatal("the manifests have no metrics-reader ClusterRole")
	}
	ns := r.c.source.Namespace
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scraper-reads-metrics"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: ns}}}
	if err := r.admin.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sa   string
		want int
	}{{"scraper", http.StatusOK}, {"stranger", http.StatusForbidden}} {
		if got := scrapeStatus(t, ctx, r.metricsURL, r.serviceAccountToken(ctx, t, ns, c.sa)); got != c.want {
			t.Errorf("GET %s as ServiceAccount %s: %d, want %d", r.metricsURL, c.sa, got, c.want)
		}
	}
}

// serviceAccountToken creates a ServiceAccount and returns a token of it for
// the API server's audience.
func (r *rbacRun) serviceAccountToken(ctx context.Context, t *testing.T, ns, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if err := r.admin.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := r.admin.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// checkOutsideGetsNothing: with the watched policies Ready (the controller
// has gone through everything it sees), the policy in a namespace it was not
// given and the policy of another shard were never written (no status, no
// finalizer: the resourceVersion of their creation), and their tenants had
// no request.
func (r *rbacRun) checkOutsideGetsNothing(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, tn := range []rbacTenant{r.outside, r.otherShard} {
		p, err := r.policy(ctx, tn)
		if err != nil {
			t.Fatal(err)
		}
		if p.ResourceVersion != r.createdVersion[tn.policy] {
			t.Errorf("%s/%s is outside the controller's namespaces or shard but was written (resourceVersion %s, created as %s): conditions %v, finalizers %v",
				tn.namespace, tn.policy, p.ResourceVersion, r.createdVersion[tn.policy], p.Status.Conditions, p.Finalizers)
		}
		if log := r.sim.Requests(tn.id); len(log.Entries) > 0 {
			t.Errorf("tenant %s of %s/%s received %d requests, want none", tn.id, tn.namespace, tn.policy, len(log.Entries))
		}
	}
}

// checkRestoreReleasesFinalizer deletes the Restore policy: the controller
// restores the tenant and removes its finalizer (a patch), so it goes away.
func (r *rbacRun) checkRestoreReleasesFinalizer(ctx context.Context, t *testing.T) {
	t.Helper()
	p, err := r.policy(ctx, r.secretApp)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.admin.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the Restore policy deleted", func(ctx context.Context) error {
		if _, err := r.policy(ctx, r.secretApp); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	if err := r.hasEvent(ctx, r.secretApp.namespace, v1.EventRestored, r.secretApp.policy); err != nil {
		t.Error(err)
	}
}

// freeAddr returns a free local TCP address.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := procs.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// flagValue returns the value of the last --name=value in args.
func flagValue(args []string, name string) string {
	v := ""
	for _, a := range args {
		if rest, ok := strings.CutPrefix(a, name+"="); ok {
			v = rest
		}
	}
	return v
}

// forbiddenLines returns the log lines that report a refused request.
func forbiddenLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "forbidden") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
