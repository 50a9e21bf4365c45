package cli

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startController runs the real reconciler against env and the simulator,
// wired as cmd/main.go wires it.
func startController(t *testing.T, env *testsupport.Env, f *fixture) {
	t.Helper()
	logf.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := controllers.NewReconciler(mgr, controllers.Config{Endpoints: f.sim.Endpoints(), HTTPClient: f.sim.HTTPClient(), CallTimeout: 5 * time.Second, ReconcileTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// login completes the device flow (authorization_pending, a slow_down, then
// approved through the simulator, as the admin would in a browser), the
// Secret holds a refresh token that was never printed, and the controller
// then uses it: the policy becomes Ready.
func TestLoginThenControllerUsesTheSecret(t *testing.T) {
	env, kubeconfig := startCluster(t)
	f := newFixture(t)
	a := mixedTenant(t, f)
	ns := newNamespace(t, env)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		wg  sync.WaitGroup
		res runResult
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		res = run(ctx, "", append([]string{"login", "--kubeconfig", kubeconfig, "--tenant", a.tenant, "--secret", ns + "/contoso-delegated"}, f.endpoints()...)...)
	}()
	var code string
	eventually(t, 20*time.Second, "the device code", func() bool {
		dcs, _ := f.sim.DeviceCodes(a.tenant)
		for _, d := range dcs {
			if d.Status == m365sim.DeviceCodePending && d.ClientID == commerceModuleClientID {
				code = d.UserCode
			}
		}
		return code != ""
	})
	if _, err := f.sim.SlowDownDeviceCode(a.tenant, code); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the slow_down answer", func() bool {
		dcs, _ := f.sim.DeviceCodes(a.tenant)
		return len(dcs) == 1 && dcs[0].IntervalSeconds == 6
	})
	if _, err := f.sim.ApproveDeviceCode(a.tenant, code, m365sim.DeviceApproval{UserPrincipalName: "billing@contoso.example", Roles: []string{m365sim.RoleBillingAdmin}}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if res.code != ExitOK || !strings.Contains(res.errOut, code) || !strings.Contains(res.out, "Verified: the licensing API lists") {
		t.Fatalf("login: %s", res)
	}
	var sec corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "contoso-delegated"}, &sec); err != nil {
		t.Fatal(err)
	}
	rt := string(sec.Data["refreshToken"])
	if rt == "" {
		t.Fatal("the Secret holds no refresh token")
	}
	assertNoSecrets(t, res, rt)

	startController(t, env, f)
	track := false
	p := &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contoso"},
		Spec: v1.TenantPurchasePolicySpec{TenantID: a.tenant, TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
			Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled),
			Auth:          v1.Auth{ClientID: commerceModuleClientID, RefreshTokenRef: &v1.SecretKeyRef{Name: "contoso-delegated", Key: "refreshToken"}},
			Subscriptions: v1.SubscriptionTracking{Track: &track}}},
	}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the policy to become Ready", func() bool {
		var got v1.TenantPurchasePolicy
		return env.Client.Get(ctx, client.ObjectKeyFromObject(p), &got) == nil && meta.IsStatusConditionTrue(got.Status.Conditions, v1.ReadyCondition)
	})
	if v, _ := f.sim.Policy(a.tenant, powerBI); v != m365sim.PolicyDisabled {
		t.Errorf("the controller enforced through the delegated token: Power BI Pro is %s", v)
	}
}

// A code nobody enters expires: login says so in one line with what to do,
// and writes no Secret.
func TestLoginCodeExpired(t *testing.T) {
	env, kubeconfig := startCluster(t)
	f := newFixtureWith(t, m365sim.Options{DeviceCodeInterval: time.Second, DeviceCodeLifetime: 3 * time.Second})
	a := mixedTenant(t, f)
	ns := newNamespace(t, env)
	r := runArgs(t, append([]string{"login", "--kubeconfig", kubeconfig, "--tenant", a.tenant, "--secret", ns + "/contoso-delegated"}, f.endpoints()...)...)
	lines := strings.Split(strings.TrimSpace(r.errOut), "\n")
	last := lines[len(lines)-1]
	if r.code != ExitError || !strings.HasPrefix(last, "error: ") || !strings.Contains(last, "the sign-in code expired before it was entered (AADSTS70019") || !strings.Contains(last, "run kubectl tpp login again") {
		t.Errorf("want exit 1 and one line saying to sign in again: %s", r)
	}
	var sec corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "contoso-delegated"}, &sec); !apierrors.IsNotFound(err) {
		t.Errorf("no Secret may be written for an expired code: %v", err)
	}
}

// status lists every policy of the cluster with what its status says, as a
// table and as JSON, and -w prints changes as the watch delivers them.
func TestStatus(t *testing.T) {
	env, kubeconfig := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nsA, nsB := newNamespace(t, env), newNamespace(t, env)
	now := time.Now()
	ready := newPolicy(nsA, "contoso", "72f988bf-86f1-41af-91ab-2d7cd011db47")
	stalled := newPolicy(nsB, "fabrikam", "0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a")
	for _, p := range []*v1.TenantPurchasePolicy{ready, stalled} {
		if err := env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ready.Status.Conditions = []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1.ReasonSucceeded, Message: "in sync", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	ready.Status.Products = []v1.ProductStatus{{ProductID: copilot, Desired: v1.PolicyDisabled, Observed: "Enabled"}, {ProductID: powerBI, Desired: v1.PolicyDisabled, Observed: "Disabled"}}
	ready.Status.Summary.SelfServiceSubscriptions = 2
	ready.Status.LastSyncTime = &metav1.Time{Time: now.Add(-3 * time.Minute)}
	soon, later := metav1.NewTime(now.Add(5*time.Hour).Truncate(time.Second)), metav1.NewTime(now.Add(20*time.Hour))
	ready.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{
		{ID: "s1", Status: "Enabled", FullRefundUntil: &later}, {ID: "s2", Status: "Enabled", FullRefundUntil: &soon}}}
	stalled.Status.Conditions = []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1.ReasonSecretNotFound, Message: "Secret x/y not found", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	for _, p := range []*v1.TenantPurchasePolicy{ready, stalled} {
		if err := env.Client.Status().Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	set := &v1.TenantPurchasePolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "baseline"},
		Spec: v1.TenantPurchasePolicySetSpec{
			Template: v1.PolicySetTemplate{TenantPurchasePolicyTemplate: newPolicy(nsA, "", "").Spec.TenantPurchasePolicyTemplate},
			Tenants:  []v1.SetTenant{{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}, {TenantID: "0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a"}}}}
	if err := env.Client.Create(ctx, set); err != nil {
		t.Fatal(err)
	}
	setDeadline := metav1.NewTime(now.Add(26 * time.Hour).Truncate(time.Second))
	set.Status.Conditions = []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionFalse, Reason: v1.ReasonChildrenStalled, Message: "1 of 2 children Stalled", LastTransitionTime: metav1.Now(), ObservedGeneration: 1}}
	set.Status.Summary = v1.SetSummary{Tenants: 2, Ready: 1, Drifted: 1, SelfServiceSubscriptions: 3}
	set.Status.NextFullRefundDeadline = &v1.RefundDeadline{FullRefundUntil: setDeadline, Policy: "baseline-72f988bf", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", SubscriptionID: "s9"}
	if err := env.Client.Status().Update(ctx, set); err != nil {
		t.Fatal(err)
	}

	table := run(ctx, "", "status", "--kubeconfig", kubeconfig)
	if table.code != ExitOK {
		t.Fatalf("status: %s", table)
	}
	for _, want := range []string{
		`(?m)^NAMESPACE +NAME +TENANT +MODE +READY +DRIFTED +SELF-SERVICE +FULL REFUND UNTIL +LAST SYNC$`,
		`(?m)^` + nsA + ` +contoso +72f988bf-86f1-41af-91ab-2d7cd011db47 +Enforce +True +1 \(` + copilot + `\) +2 +` + regexpQuote(soon.UTC().Format(time.RFC3339)) + ` \(in 4h59m\) +3m ago$`,
		`(?m)^` + nsB + ` +fabrikam +0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a +Enforce +False \(SecretNotFound\) +0 +0 +- +never$`,
		`(?m)^` + nsA + ` +tpps/baseline +2 tenants +Enforce +False \(ChildrenStalled\) +1 tenant +3 +` + regexpQuote(setDeadline.UTC().Format(time.RFC3339)) + ` \(in 1d1h\) +-$`,
	} {
		if !regexpMatch(want, table.out) {
			t.Errorf("table lacks %s\n%s", want, table.out)
		}
	}
	js := run(ctx, "", "status", "--kubeconfig", kubeconfig, "-o", "json")
	var doc struct{ Items []policyStatus }
	if err := json.Unmarshal([]byte(js.out), &doc); err != nil {
		t.Fatalf("-o json: %v\n%s", err, js)
	}
	byName := map[string]policyStatus{}
	for _, p := range doc.Items {
		byName[p.Kind+" "+p.Namespace+"/"+p.Name] = p
	}
	if s := byName[kindSet+" "+nsA+"/baseline"]; s.Tenants == nil || *s.Tenants != 2 || s.DriftedTenants == nil || *s.DriftedTenants != 1 ||
		s.SelfService != 3 || s.FullRefundUntil == nil || !s.FullRefundUntil.Equal(setDeadline.Time) || s.Reason != v1.ReasonChildrenStalled {
		t.Errorf("set baseline: %+v", s)
	}
	if c := byName[kindPolicy+" "+nsA+"/contoso"]; c.FullRefundUntil == nil || !c.FullRefundUntil.Equal(soon.Time) || len(c.Drifted) != 1 || c.SelfService != 2 {
		t.Errorf("contoso: %+v", c)
	}
	if f := byName[kindPolicy+" "+nsB+"/fabrikam"]; f.Ready != "False" || f.Reason != v1.ReasonSecretNotFound || f.Message != "Secret x/y not found" {
		t.Errorf("fabrikam: %+v", f)
	}

	t.Run("watch", func(t *testing.T) {
		wctx, stop := context.WithCancel(ctx)
		out := &testsupport.SyncBuffer{}
		done := make(chan int)
		go func() {
			done <- Run(wctx, []string{"status", "--kubeconfig", kubeconfig, "-w", "-A=false", "-n", nsB}, Streams{In: strings.NewReader(""), Out: out, Err: io.Discard})
		}()
		eventually(t, 10*time.Second, "the listed row", func() bool { return strings.Contains(out.String(), "LISTED") })
		stalled.Status.Conditions[0] = metav1.Condition{Type: v1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1.ReasonSucceeded, Message: "ok", LastTransitionTime: metav1.Now()}
		if err := env.Client.Status().Update(ctx, stalled); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the MODIFIED row", func() bool {
			return regexpMatch(`(?m)^MODIFIED +`+nsB+` +fabrikam +\S+ +Enforce +True `, out.String())
		})
		regional := set.DeepCopy()
		regional.ObjectMeta = metav1.ObjectMeta{Namespace: nsB, Name: "regional"}
		regional.Status = v1.TenantPurchasePolicySetStatus{}
		if err := env.Client.Create(ctx, regional); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "the set's ADDED row", func() bool {
			return regexpMatch(`(?m)^ADDED +`+nsB+` +tpps/regional +0 tenants +Enforce +Unknown `, out.String())
		})
		stop()
		if code := <-done; code != ExitOK {
			t.Errorf("watch exit %d", code)
		}
		if strings.Contains(out.String(), "contoso") {
			t.Errorf("-A=false -n %s listed another namespace:\n%s", nsB, out)
		}
	})
}

// --from-policy reads the policy and its Secret through the kubeconfig; a
// user the cluster does not let read them gets one line saying so.
func TestFromPolicy(t *testing.T) {
	env, kubeconfig := startCluster(t)
	f := newFixture(t)
	a := mixedTenant(t, f, m365sim.AllPermissions...)
	ns := newNamespace(t, env)
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}, StringData: map[string]string{"clientSecret": a.secret}}); err != nil {
		t.Fatal(err)
	}
	p := newPolicy(ns, "contoso", a.tenant)
	p.Spec.Auth = v1.Auth{ClientID: a.clientID, ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}}
	if err := env.Client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	r := runArgs(t, append([]string{"doctor", "--kubeconfig", kubeconfig, "--from-policy", ns + "/contoso"}, f.endpoints()...)...)
	if r.code != ExitOK || !strings.Contains(r.out, "client secret from Secret "+ns+"/app") || !strings.Contains(r.out, "PASS  write permission") {
		t.Errorf("doctor --from-policy: %s", r)
	}
	assertNoSecrets(t, r, a.secret)

	exp := runArgs(t, append([]string{"export", "--kubeconfig", kubeconfig, "--from-policy", ns + "/contoso", "--default", "Disabled"}, f.endpoints()...)...)
	if exp.code != ExitOK || !strings.Contains(exp.out, "namespace: "+ns) || !strings.Contains(exp.out, "clientSecretRef:\n      name: app\n      key: clientSecret") {
		t.Errorf("export --from-policy keeps the policy's name, namespace and auth: %s", exp)
	}

	nobody, err := kubeconfigFor(env, envtest.User{Name: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	denied := runArgs(t, append([]string{"doctor", "--kubeconfig", nobody, "--from-policy", ns + "/contoso"}, f.endpoints()...)...)
	want := "error: reading TenantPurchasePolicy " + ns + "/contoso: forbidden by the cluster's RBAC"
	if denied.code != ExitError || !strings.HasPrefix(denied.errOut, want) || strings.Count(denied.errOut, "\n") != 1 {
		t.Errorf("want one line starting %q\n%s", want, denied)
	}
	missing := runArgs(t, append([]string{"doctor", "--kubeconfig", kubeconfig, "--from-policy", ns + "/nope"}, f.endpoints()...)...)
	if missing.code != ExitError || !strings.Contains(missing.errOut, "not found in the cluster of the current context") {
		t.Errorf("missing policy: %s", missing)
	}
}

func newPolicy(ns, name, tenant string) *v1.TenantPurchasePolicy {
	return &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.TenantPurchasePolicySpec{TenantID: tenant, TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
			Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled),
			Auth: v1.Auth{ClientID: "11111111-2222-3333-4444-555555555555", ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}}}},
	}
}
