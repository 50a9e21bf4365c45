// Command bench measures the controller against the Microsoft 365 simulator:
// a fleet of tenants sharing one partner app and one Secret is adopted,
// converged and resynced, and the requests each tenant received are compared
// with the request floor (docs/decisions.md, "The request floor"). With -soak it then keeps flipping
// products by hand and injecting 429s for the given time, and checks that
// every drift is corrected, no request arrives before a Retry-After, and the
// heap and goroutines stay flat.
//
//	make bench                 # go run ./hack/bench -tenants 200
//	make soak                  # go run ./hack/bench -tenants 50 -soak 5m
//
// It measures and reports; it must not change how the controller runs (it
// starts the real binary with ordinary flags) nor run in `make test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

func main() {
	tenants := flag.Int("tenants", 200, "tenants (one policy each)")
	workers := flag.Int("max-concurrent-reconciles", 8, "controller concurrency")
	soak := flag.Duration("soak", 0, "after the bench, flip products and inject 429s for this long (0: no soak)")
	flag.Parse()
	if err := run(*tenants, *workers, *soak); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type fleet struct {
	k8s      client.Client
	sim      *m365sim.Server
	ns       string
	clientID string
	tenants  []string
}

func run(n, workers int, soak time.Duration) error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is unset: run through make bench")
	}
	logf.SetLogger(logr.Discard())
	// Ctrl-C cancels ctx: every wait returns, and the deferred env.Stop runs.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	env, err := testsupport.StartEnv()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()

	cfg, scheme := env.Config, env.Scheme
	cfg.QPS, cfg.Burst = 500, 1000
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	sim, err := m365sim.New(m365sim.Options{})
	if err != nil {
		return err
	}
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return err
	}
	r, err := controllers.NewReconciler(mgr, controllers.Config{Endpoints: sim.Endpoints(), HTTPClient: sim.HTTPClient(), CallTimeout: 10 * time.Second, ReconcileTimeout: time.Minute})
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr, workers); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()

	f := &fleet{k8s: k8s, sim: sim, ns: "bench"}
	if err := f.provision(ctx, n); err != nil {
		return err
	}
	fmt.Printf("bench: %d tenants, one partner app and one Secret, --max-concurrent-reconciles=%d\n\n", n, workers)

	start := time.Now()
	if err := f.createPolicies(ctx); err != nil {
		return err
	}
	if err := f.waitAll(ctx, 5*time.Minute, func(p *v1.TenantPurchasePolicy) bool { return ready(p) && p.Status.Summary.Drifted == 0 }); err != nil {
		return err
	}
	adoption := time.Since(start)
	adoptLog := f.requests()

	f.resetRequests()
	start = time.Now()
	if err := f.resync(ctx); err != nil {
		return err
	}
	resync := time.Since(start)
	resyncLog := f.requests()

	fmt.Println("phase      wall      tenants/s  per tenant: licensing GET  PUT  graph GET (settings)  settings PATCH  token POST  users-list  early")
	report := func(name string, wall time.Duration, c counts) {
		fmt.Printf("%-9s  %-8s  %9.1f  %25.2f  %4.2f  %9.2f (%6.2f)  %14.2f  %10.2f  %10d  %5d\n", name, wall.Round(time.Millisecond),
			float64(n)/wall.Seconds(), c.per("licensing GET", n), c.per("licensing PUT", n), c.per("graph GET", n), c.settingsGETs(n),
			c.per("graph PATCH", n), c.per("authority POST", n), c["graph GET users-list"], c["early"])
	}
	report("adoption", adoption, adoptLog)
	report("resync", resync, resyncLog)
	products := len(m365sim.DefaultProducts())
	fmt.Printf("\nfloor per sync: 1 licensing GET, 2 graph GET for tracking + 1 per settings resource managed (2 here), "+
		"1 PUT per differing product (%d at adoption, 0 at resync), 1 PATCH per differing settings resource (2 at adoption, 0 at resync)\n", products)
	fmt.Printf("ratio to floor: adoption PUT %.2f, adoption settings PATCH %.2f, resync licensing GET %.2f, resync graph GET %.2f, resync PUT %.0f, resync settings PATCH %.0f\n",
		adoptLog.per("licensing PUT", n)/float64(products), adoptLog.per("graph PATCH", n)/2, resyncLog.per("licensing GET", n), resyncLog.per("graph GET", n)/4,
		resyncLog.per("licensing PUT", n), resyncLog.per("graph PATCH", n))
	fmt.Printf("resync is %.1fx faster per tenant than adoption\n", adoption.Seconds()/resync.Seconds())

	if soak > 0 {
		return f.soak(ctx, soak)
	}
	return nil
}

func (f *fleet) provision(ctx context.Context, n int) error {
	clientID, secret := uuid.NewString(), "partner-"+uuid.NewString()
	for i := 0; i < n; i++ {
		id := uuid.NewString()
		if _, err := f.sim.AddTenant(m365sim.TenantConfig{ID: id, Name: "bench " + strconv.Itoa(i), WithSampleDirectory: true}); err != nil {
			return err
		}
		if err := f.sim.RegisterApp(id, m365sim.App{ClientID: clientID, Secret: secret, Permissions: m365sim.AllPermissions}); err != nil {
			return err
		}
		f.tenants = append(f.tenants, id)
	}
	if err := f.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}); err != nil {
		return err
	}
	f.clientID = clientID
	return f.k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "partner-app", Namespace: f.ns}, StringData: map[string]string{"clientSecret": secret}})
}

func (f *fleet) createPolicies(ctx context.Context) error {
	for i, id := range f.tenants {
		p := &v1.TenantPurchasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-" + strconv.Itoa(i), Namespace: f.ns},
			Spec: v1.TenantPurchasePolicySpec{
				TenantID: id,
				TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
					Auth:     v1.Auth{ClientID: f.clientID, ClientSecretRef: &v1.SecretKeyRef{Name: "partner-app", Key: "clientSecret"}},
					Default:  v1.RulePolicy(v1.PolicyDisabled),
					Products: []v1.ProductRule{{ProductID: "CFQ7TTC0MM8R", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
					// Every side door closed: both settings resources are read and written.
					TenantSettings: &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingDisabled,
						TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingDisabled},
					Interval: metav1.Duration{Duration: time.Hour},
				},
			},
		}
		if err := f.k8s.Create(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// resync asks every policy to reconcile now and waits until all did.
func (f *fleet) resync(ctx context.Context) error {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	var list v1.TenantPurchasePolicyList
	if err := f.k8s.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return err
	}
	for i := range list.Items {
		p := &list.Items[i]
		patch := client.MergeFrom(p.DeepCopy())
		metav1.SetMetaDataAnnotation(&p.ObjectMeta, v1.RequestedAtAnnotation, stamp)
		if err := f.k8s.Patch(ctx, p, patch); err != nil {
			return err
		}
	}
	return f.waitAll(ctx, 5*time.Minute, func(p *v1.TenantPurchasePolicy) bool {
		return p.Status.LastHandledReconcileAt == stamp && ready(p) && p.Status.Summary.Drifted == 0
	})
}

func (f *fleet) waitAll(ctx context.Context, timeout time.Duration, done func(*v1.TenantPurchasePolicy) bool) error {
	deadline := time.Now().Add(timeout)
	for {
		var list v1.TenantPurchasePolicyList
		if err := f.k8s.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
			return err
		}
		pending := 0
		for i := range list.Items {
			if !done(&list.Items[i]) {
				pending++
			}
		}
		if pending == 0 && len(list.Items) == len(f.tenants) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d policies not done after %s", pending, len(f.tenants), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(p *v1.TenantPurchasePolicy) bool {
	return p.Status.Summary.Ready == string(metav1.ConditionTrue)
}

type counts map[string]int

func (c counts) per(key string, n int) float64 { return float64(c[key]) / float64(n) }

func (f *fleet) requests() counts {
	c := counts{}
	for _, id := range f.tenants {
		log := f.sim.Requests(id)
		for k, v := range log.Counts {
			c[k] += v
		}
		c["early"] += log.EarlyRequests
	}
	return c
}

// settingsGETs is the GETs of both settings resources per tenant.
func (c counts) settingsGETs(n int) float64 {
	return c.per("graph GET authorizationPolicy", n) + c.per("graph GET appsAndServices", n)
}

func (f *fleet) resetRequests() {
	for _, id := range f.tenants {
		f.sim.ResetRequests(id)
	}
}

// soak flips products by hand and injects 429s on writes in rounds, then
// checks that every flip was detected and corrected exactly once, that no
// request came before a Retry-After, and that memory stayed flat.
func (f *fleet) soak(ctx context.Context, d time.Duration) error {
	fmt.Printf("\nsoak: %s of hand-made flips and 429s\n", d)
	products := m365sim.DefaultProducts()
	rng := rand.New(rand.NewPCG(1, 2))
	before, err := f.counters(ctx)
	if err != nil {
		return err
	}
	heap0, gr0 := memory()
	flips, faults, rounds := 0, 0, 0
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		rounds++
		flipped := map[[2]string]bool{}
		for i := 0; i < len(f.tenants)/5+1; i++ {
			id := f.tenants[rng.IntN(len(f.tenants))]
			p := products[rng.IntN(len(products))]
			if p.ID == "CFQ7TTC0MM8R" || flipped[[2]string{id, p.ID}] {
				continue // Copilot is Enabled by rule; a second flip of one product is one drift
			}
			if err := f.sim.SetPolicy(id, p.ID, "Enabled"); err != nil {
				return err
			}
			flipped[[2]string{id, p.ID}] = true
			if rng.IntN(4) == 0 {
				faults++
				_ = f.sim.InjectFault(id, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Status: 429, RetryAfter: "2", Count: 1})
			}
		}
		flips += len(flipped)
		if err := f.resync(ctx); err != nil {
			return fmt.Errorf("round %d: %w", rounds, err)
		}
	}
	after, err := f.counters(ctx)
	if err != nil {
		return err
	}
	c := f.requests()
	heap1, gr1 := memory()
	detected, corrected := after.DriftDetected-before.DriftDetected, after.DriftCorrected-before.DriftCorrected
	fmt.Printf("rounds %d, hand-made flips %d (%d met a 429), drift detected %d, corrected %d, early requests %d\n",
		rounds, flips, faults, detected, corrected, c["early"])
	fmt.Printf("heap %s -> %s, goroutines %d -> %d\n", mib(heap0), mib(heap1), gr0, gr1)
	switch {
	case c["early"] != 0:
		return fmt.Errorf("%d requests arrived before a Retry-After had passed", c["early"])
	case detected != int64(flips) || corrected != int64(flips):
		return fmt.Errorf("%d flips, but %d drifts detected and %d corrected", flips, detected, corrected)
	}
	return nil
}

// counters sums the lifetime counters of every policy.
func (f *fleet) counters(ctx context.Context) (v1.Counters, error) {
	var list v1.TenantPurchasePolicyList
	var sum v1.Counters
	if err := f.k8s.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return sum, err
	}
	for _, p := range list.Items {
		sum.DriftDetected += p.Status.Counters.DriftDetected
		sum.DriftCorrected += p.Status.Counters.DriftCorrected
	}
	return sum, nil
}

func memory() (uint64, int) {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return m.HeapAlloc, goruntime.NumGoroutine()
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
