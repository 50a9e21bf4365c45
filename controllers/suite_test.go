package controllers_test

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The integration suite: a real kube-apiserver (envtest), the Microsoft 365
// simulator over TLS, and the manager running the real reconciler with the
// real clients, exactly as cmd/main.go wires them.
var (
	env       *testsupport.Env
	k8s       client.Client // direct (uncached) client for assertions
	sim       *m365sim.Server
	clockSkew atomic.Int64 // the reconciler's clock = time.Now() + clockSkew
	cancelMgr context.CancelFunc
	// controllerLog keeps everything the controller logged, to prove no
	// secret reaches the logs.
	controllerLog testsupport.SyncBuffer
	// statusWriteFault, when set, may refuse a status write of the
	// controller (return an error) before it reaches the API server.
	statusWriteFault atomic.Pointer[func(client.Object) error]
	// apiLog records every request the controller sends the API server.
	apiLog requestLog
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "controllers integration")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, &controllerLog)), zap.UseDevMode(true)))
	var err error
	env, err = testsupport.StartEnv()
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client

	sim, err = m365sim.New(m365sim.Options{PageSize: 5})
	Expect(err).NotTo(HaveOccurred())
	Expect(sim.Start()).To(Succeed())

	mgr, r := newManager()
	Expect(r.SetupWithManager(mgr, 4)).To(Succeed())
	Expect(newSetReconciler(mgr, r).SetupWithManager(mgr, 2)).To(Succeed())

	var ctx context.Context
	ctx, cancelMgr = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

// newManager builds a manager and the reconciler wired to the simulator as
// cmd/main.go wires it to Microsoft (the same cache transform), on the
// skewable test clock, logging every request to the API server in apiLog.
func newManager() (ctrl.Manager, *controllers.TenantPurchasePolicyReconciler) {
	GinkgoHelper()
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = apiLog.wrap
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{DefaultTransform: controllers.CacheTransform, ByObject: map[client.Object]cache.ByObject{
			&coordinationv1.Lease{}: controllers.LeaseCache(leaseNamespace), // as cmd/main.go
		}}})
	Expect(err).NotTo(HaveOccurred())
	r, err := controllers.NewReconciler(mgr, controllers.Config{
		Endpoints:        sim.Endpoints(),
		HTTPClient:       sim.HTTPClient(),
		CallTimeout:      5 * time.Second,
		ReconcileTimeout: 30 * time.Second,
		Now:              func() time.Time { return time.Now().Add(time.Duration(clockSkew.Load())) },
		// As cmd/main.go sets it for a cluster-wide, unsharded cache (this
		// one); the shard e2e test runs the uncached path.
		CacheHoldsEveryPolicy: true,
	})
	Expect(err).NotTo(HaveOccurred())
	r.Client = faultyStatus{r.Client}
	return mgr, r
}

// faultyStatus is the controller's client, with its status writes passed
// through statusWriteFault.
type faultyStatus struct{ client.Client }

func (c faultyStatus) Status() client.SubResourceWriter { return faultyWriter{c.Client.Status()} }

type faultyWriter struct{ client.SubResourceWriter }

func (w faultyWriter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	if fault := statusWriteFault.Load(); fault != nil {
		if err := (*fault)(obj); err != nil {
			return err
		}
	}
	return w.SubResourceWriter.Update(ctx, obj, opts...)
}

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
	}
	if sim != nil {
		sim.Close()
	}
	Expect(env.Stop()).To(Succeed())
})

// testTenant is one simulated tenant with an app and a namespace holding its
// client secret.
type testTenant struct {
	ID, ClientID, Secret, Namespace string
}

// newTenant creates a simulator tenant (every product Enabled, with the
// sample directory), an app with the given permissions (all of them when
// none are given), a fresh namespace, and a Secret "app" with key
// "clientSecret".
func newTenant(perms ...string) testTenant {
	GinkgoHelper()
	t := testTenant{ID: uuid.NewString(), ClientID: uuid.NewString(), Secret: "s3cr3t-" + uuid.NewString(), Namespace: "t-" + uuid.NewString()[:8]}
	if len(perms) == 0 {
		perms = m365sim.AllPermissions
	}
	_, err := sim.AddTenant(m365sim.TenantConfig{ID: t.ID, Name: "tenant " + t.ID[:8], WithSampleDirectory: true})
	Expect(err).NotTo(HaveOccurred())
	Expect(sim.RegisterApp(t.ID, m365sim.App{ClientID: t.ClientID, Secret: t.Secret, Permissions: perms})).To(Succeed())
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.Namespace}})).To(Succeed())
	Expect(k8s.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: t.Namespace},
		StringData: map[string]string{"clientSecret": t.Secret},
	})).To(Succeed())
	return t
}

// policyFor returns an Enforce policy of the tenant authenticating with the
// "app" Secret, default Disabled, a 1h interval (runs only when the test
// acts) and subscription tracking off; tests adjust it before creating it.
func policyFor(t testTenant, name string) *v1.TenantPurchasePolicy {
	track := false
	return &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.Namespace},
		Spec: v1.TenantPurchasePolicySpec{
			TenantID: t.ID,
			TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:          v1.Auth{ClientID: t.ClientID, ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}},
				Mode:          v1.ModeEnforce,
				Default:       v1.RulePolicy(v1.PolicyDisabled),
				Interval:      metav1.Duration{Duration: time.Hour},
				Subscriptions: v1.SubscriptionTracking{Track: &track},
			},
		},
	}
}

// get reads a policy through the direct client.
func get(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	out := &v1.TenantPurchasePolicy{}
	Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(p), out)).To(Succeed())
	return out
}

// condition returns the policy's condition of type t, or nil.
func condition(p *v1.TenantPurchasePolicy, t string) *metav1.Condition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// requestReconcile sets the reconcile-now annotation, as a user would.
func requestReconcile(p *v1.TenantPurchasePolicy) string {
	GinkgoHelper()
	stamp := fmt.Sprintf("%d", time.Now().UnixNano())
	cur := get(p)
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[v1.RequestedAtAnnotation] = stamp
	Expect(k8s.Patch(context.Background(), cur, patch)).To(Succeed())
	return stamp
}

// handled waits until the controller acted on the reconcile-now annotation
// and returns the policy as it was then.
func handled(p *v1.TenantPurchasePolicy, stamp string) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	var out *v1.TenantPurchasePolicy
	Eventually(func() string { out = get(p); return out.Status.LastHandledReconcileAt }).WithTimeout(30 * time.Second).Should(Equal(stamp))
	return out
}

// events returns the events.k8s.io Events about a policy, by reason.
func events(p *v1.TenantPurchasePolicy) map[string][]string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(p.Namespace))).To(Succeed())
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.Name == p.Name {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out
}
