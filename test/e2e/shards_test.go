package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The sharding test: three controller processes, each with its own
// --watch-label-selector and its own API user (so the audit log tells who
// wrote what), share one fleet of 300 policies and one Lease namespace.
const (
	fleetSize        = 300
	shardTimeout     = 4 * time.Minute
	shardNamespace   = "fleet"
	shardNamespace2  = "fleet-other"
	shardLeaseNS     = "tpp-system"
	shardLabel       = "shard"
	shardPartnerApp  = "partner-app"
	shardSecretKey   = "clientSecret"
	shardPollEvery   = 250 * time.Millisecond
	auditPolicyShard = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [patch, update]
    resources:
      - group: commerce.tenantpolicy.io
        resources: [tenantpurchasepolicies/status]
  - level: None
`
)

var shardNames = []string{"a", "b", "c"}

func TestShardsSplitTheFleet(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*shardTimeout)
	defer cancel()
	f := startShardFleet(t)

	// Every policy converges, each written by the one shard its label names.
	// The tenant shared across shards is claimed by the newer policy (shard
	// c): the older one (shard a) starts suspended.
	f.waitAll(t, "cold start", func(p *v1.TenantPurchasePolicy) bool { return isReady(p) || p.Name == "cross-old" && isSuspended(p) })
	f.expectWritersMatchLabels(t)
	if got := f.leaseHolder(t, f.policy(t, shardNamespace2, "cross-new").Spec.TenantID); got != shardNamespace2+"/cross-new" {
		t.Fatalf("with the older policy suspended the tenant's Lease names %q, want %s/cross-new", got, shardNamespace2)
	}

	// One owner across shards: the older policy, resumed, takes the tenant
	// back, and the newer, which no shard-a event reaches, learns it from
	// the Lease at once (its interval is an hour; nothing else runs it).
	older := f.policy(t, shardNamespace, "cross-old")
	resume := client.MergeFrom(older.DeepCopy())
	older.Spec.Suspend = false
	if err := f.env.Client.Patch(ctx, older, resume); err != nil {
		t.Fatal(err)
	}
	f.waitAll(t, "the older policy takes the tenant back", func(p *v1.TenantPurchasePolicy) bool {
		return p.Name != "cross-new" && isReady(p) || p.Name == "cross-new" && isConflictLost(p)
	})
	older, newer := f.policy(t, shardNamespace, "cross-old"), f.policy(t, shardNamespace2, "cross-new")
	if !isReady(older) || !isConflictLost(newer) {
		t.Fatalf("cross-shard tenant: the older policy (shard a) must own it and the newer (shard c) lose: %s, %s", summary(older), summary(newer))
	}
	if got := f.leaseHolder(t, older.Spec.TenantID); got != shardNamespace+"/cross-old" {
		t.Errorf("the tenant's Lease names %q, want %s/cross-old", got, shardNamespace)
	}
	if n := len(f.sim.Requests(older.Spec.TenantID).Entries); n == 0 {
		t.Fatal("no request reached the cross-shard tenant")
	}

	// Shard b is killed in the middle of its life and restarted; meanwhile
	// some of its tenants drift. Nothing is lost or counted twice.
	before := f.snapshot(t, "b")
	before.waitPastLastSync(t)
	drifted := f.driftSome(t, "b", 5)
	f.shards["b"].kill(t)
	f.shards["b"].start(t)
	f.waitAll(t, "shard b after its restart", func(p *v1.TenantPurchasePolicy) bool {
		last, ok := before.synced[p.Namespace+"/"+p.Name]
		return !ok || isReady(p) && p.Status.LastSyncTime.After(last) // its restart reconciles each of its policies
	})
	f.expectNothingLost(t, before, drifted)
	f.expectWritersMatchLabels(t)

	// The owner in shard a leaves and names the loser in shard c its heir in
	// the Lease, which runs the heir at once.
	if err := f.env.Client.Delete(ctx, older); err != nil {
		t.Fatal(err)
	}
	f.waitAll(t, "handover across shards", func(p *v1.TenantPurchasePolicy) bool { return p.Name != "cross-new" || isReady(p) })
	if got := f.leaseHolder(t, newer.Spec.TenantID); got != shardNamespace2+"/cross-new" {
		t.Errorf("after the handover the Lease names %q, want %s/cross-new", got, shardNamespace2)
	}
}

// shardFleet is the control plane (with an audit log), the simulator, the
// fleet's policies and the three shard processes.
type shardFleet struct {
	env      *testsupport.Env
	auditLog string
	sim      *m365sim.Server
	dir      string
	shards   map[string]*shardProc
}

func startShardFleet(t *testing.T) *shardFleet {
	t.Helper()
	dir := t.TempDir()
	f := &shardFleet{dir: dir, auditLog: filepath.Join(dir, "audit.log"), shards: map[string]*shardProc{}}
	policyFile := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policyFile, []byte(auditPolicyShard), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	f.env, err = testsupport.StartEnv(func(e *envtest.Environment) {
		e.ControlPlane.GetAPIServer().Configure().
			Set("audit-policy-file", policyFile).
			Set("audit-log-path", f.auditLog).
			Set("audit-log-mode", "blocking")
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.env.Stop() })

	ca := filepath.Join(dir, "sim-ca.pem")
	if f.sim, err = m365sim.New(m365sim.Options{CAFile: ca}); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.sim.Close)
	f.createFleet(t)
	for _, name := range shardNames {
		f.shards[name] = f.newShard(t, name, ca)
		f.shards[name].start(t)
	}
	return f
}

// createFleet makes 300 policies: tenants 0..297 one policy each, labelled
// shard a, b, c in turn, and one tenant with an older policy in shard a and
// a newer one in shard c in another namespace. One partner app with one
// Secret serves every tenant.
func (f *shardFleet) createFleet(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	clientID, secret := uuid.NewString(), "s3cr3t-"+uuid.NewString()
	for _, ns := range []string{shardNamespace, shardNamespace2, shardLeaseNS} {
		if err := f.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{shardNamespace, shardNamespace2} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: shardPartnerApp, Namespace: ns}, StringData: map[string]string{shardSecretKey: secret}}
		if err := f.env.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	newTenant := func() string {
		id := uuid.NewString()
		if _, err := f.sim.AddTenant(m365sim.TenantConfig{ID: id}); err != nil {
			t.Fatal(err)
		}
		if err := f.sim.RegisterApp(id, m365sim.App{ClientID: clientID, Secret: secret, Permissions: m365sim.AllPermissions}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	track := false
	policy := func(ns, name, tenant, shard string) *v1.TenantPurchasePolicy {
		return &v1.TenantPurchasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{shardLabel: shard}},
			Spec: v1.TenantPurchasePolicySpec{
				TenantID: tenant,
				TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
					Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled),
					Auth:          v1.Auth{ClientID: clientID, ClientSecretRef: &v1.SecretKeyRef{Name: shardPartnerApp, Key: shardSecretKey}},
					Interval:      metav1.Duration{Duration: time.Hour},
					Subscriptions: v1.SubscriptionTracking{Track: &track},
				},
			},
		}
	}
	var policies []*v1.TenantPurchasePolicy
	for i := range fleetSize - 2 {
		policies = append(policies, policy(shardNamespace, fmt.Sprintf("p-%03d", i), newTenant(), shardNames[i%len(shardNames)]))
	}
	cross := newTenant()
	create := func(p *v1.TenantPurchasePolicy) {
		if err := f.env.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	oldest := policy(shardNamespace, "cross-old", cross, "a")
	oldest.Spec.Suspend = true // resumed by the test, to take the tenant from the newer
	create(oldest)
	for _, p := range policies {
		create(p)
	}
	// creationTimestamp has one-second resolution: the newer is strictly newer.
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 3*time.Second, true, func(context.Context) (bool, error) {
		return time.Now().Truncate(time.Second).After(oldest.CreationTimestamp.Time), nil
	}); err != nil {
		t.Fatal(err)
	}
	newer := policy(shardNamespace2, "cross-new", cross, "c")
	newer.Spec.Products = []v1.ProductRule{{ProductID: "CFQ7TTC0MM8R", Policy: v1.RulePolicy(v1.PolicyEnabled)}}
	create(newer)
}

// shardProc is one controller process: the real binary with the shard's
// label selector, its own API user and the shared Lease namespace.
type shardProc struct {
	name, log string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
}

func (f *shardFleet) newShard(t *testing.T, name, ca string) *shardProc {
	t.Helper()
	user, err := f.env.Environment.AddUser(envtest.User{Name: "shard-" + name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(f.dir, "shard-"+name+".kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	ep := f.sim.Endpoints()
	return &shardProc{name: name, log: filepath.Join(f.dir, "shard-"+name+".log"), args: []string{
		"--kubeconfig=" + kcPath,
		"--watch-label-selector=" + shardLabel + "=" + name,
		"--lease-namespace=" + shardLeaseNS,
		"--licensing-endpoint=" + ep.Licensing, "--graph-endpoint=" + ep.Graph, "--authority-host=" + ep.AuthorityHost,
		"--ca-file=" + ca,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		// Splitting and ownership do not depend on the worker count; three
		// shards of 64 workers against an instant simulator would only
		// saturate the one test API server on a 2-core machine.
		"--max-concurrent-reconciles=8",
	}}
}

func (s *shardProc) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bins.Paths["manager"], s.args...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}(s.cmd, s.done)
	t.Cleanup(func() { s.kill(t) })
}

// kill ends the process with SIGKILL: no graceful shutdown.
func (s *shardProc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	if t.Failed() {
		if b, err := os.ReadFile(s.log); err == nil {
			t.Logf("shard %s log (tail):\n%s", s.name, tail(string(b), 40))
		}
	}
}

// waitAll polls the fleet until every policy satisfies done.
func (f *shardFleet) waitAll(t *testing.T, phase string, done func(*v1.TenantPurchasePolicy) bool) {
	t.Helper()
	var pending []string
	err := wait.PollUntilContextTimeout(context.Background(), shardPollEvery, shardTimeout, true, func(ctx context.Context) (bool, error) {
		list, err := f.list(ctx)
		if err != nil {
			return false, err
		}
		pending = pending[:0]
		for i := range list {
			if !done(&list[i]) {
				pending = append(pending, list[i].Namespace+"/"+list[i].Name+": "+summary(&list[i]))
			}
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		t.Fatalf("%s: %d policies not there after %s, e.g. %v", phase, len(pending), shardTimeout, pending[:min(3, len(pending))])
	}
}

func (f *shardFleet) list(ctx context.Context) ([]v1.TenantPurchasePolicy, error) {
	var list v1.TenantPurchasePolicyList
	if err := f.env.Client.List(ctx, &list); err != nil {
		return nil, err
	}
	return list.Items, nil
}

func (f *shardFleet) policy(t *testing.T, ns, name string) *v1.TenantPurchasePolicy {
	t.Helper()
	p := &v1.TenantPurchasePolicy{}
	if err := f.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// expectWritersMatchLabels reads the audit log: every policy's status was
// written, and only by the shard its label names.
func (f *shardFleet) expectWritersMatchLabels(t *testing.T) {
	t.Helper()
	writers := f.statusWriters(t)
	list, err := f.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list {
		key := p.Namespace + "/" + p.Name
		want := "shard-" + p.Labels[shardLabel]
		if got := writers[key]; len(got) != 1 || !got[want] {
			t.Errorf("%s (label shard=%s): status written by %v, want only %s", key, p.Labels[shardLabel], keys(got), want)
		}
	}
}

// statusWriters maps each policy to the users whose status writes the API
// server accepted.
func (f *shardFleet) statusWriters(t *testing.T) map[string]map[string]bool {
	t.Helper()
	file, err := os.Open(f.auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Stage string `json:"stage"`
			User  struct {
				Username string `json:"username"`
			} `json:"user"`
			ObjectRef struct {
				Namespace, Name, Subresource string
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if e.Stage != "ResponseComplete" || e.ResponseStatus.Code != 200 || e.ObjectRef.Subresource != "status" {
			continue
		}
		key := e.ObjectRef.Namespace + "/" + e.ObjectRef.Name
		if out[key] == nil {
			out[key] = map[string]bool{}
		}
		out[key][e.User.Username] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shardState is what must survive a restart of a shard: each policy's
// lifetime counters and adoption values, its Adopted Events, the writes its
// tenant received, and when it last synced.
type shardState struct {
	counters map[string]v1.Counters
	adopted  map[string]map[string]string
	adoption map[string]int
	puts     map[string]int
	synced   map[string]time.Time
}

// waitPastLastSync waits until the clock has passed every last sync of the
// snapshot by a second (lastSyncTime has one-second resolution), so a later
// sync is seen as later.
func (st shardState) waitPastLastSync(t *testing.T) {
	t.Helper()
	var latest time.Time
	for _, s := range st.synced {
		if s.After(latest) {
			latest = s
		}
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 3*time.Second, true, func(context.Context) (bool, error) {
		return time.Now().Truncate(time.Second).After(latest), nil
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *shardFleet) snapshot(t *testing.T, shard string) shardState {
	t.Helper()
	list, err := f.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := shardState{counters: map[string]v1.Counters{}, adopted: map[string]map[string]string{}, adoption: f.adoptedEvents(t),
		puts: map[string]int{}, synced: map[string]time.Time{}}
	for _, p := range list {
		if p.Labels[shardLabel] != shard {
			continue
		}
		key := p.Namespace + "/" + p.Name
		st.counters[key] = p.Status.Counters
		st.puts[key] = f.puts(p.Spec.TenantID)
		if p.Status.LastSyncTime != nil {
			st.synced[key] = p.Status.LastSyncTime.Time
		}
		st.adopted[key] = map[string]string{}
		for _, ps := range p.Status.Products {
			st.adopted[key][ps.ProductID] = ps.AdoptedValue
		}
	}
	return st
}

// adoptedEvents counts the Adopted Events (with their series) per policy.
func (f *shardFleet) adoptedEvents(t *testing.T) map[string]int {
	t.Helper()
	var events eventsv1.EventList
	if err := f.env.Client.List(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range events.Items {
		if e.Reason != v1.EventAdopted {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		out[e.Regarding.Namespace+"/"+e.Regarding.Name] += n
	}
	return out
}

// driftSome flips one product by hand in n tenants of the shard, as an
// admin would in the admin center, and returns those policies.
func (f *shardFleet) driftSome(t *testing.T, shard string, n int) map[string]bool {
	t.Helper()
	list, err := f.list(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range list {
		if p.Labels[shardLabel] != shard || len(out) == n {
			continue
		}
		if err := f.sim.SetPolicy(p.Spec.TenantID, p.Status.Products[0].ProductID, m365sim.PolicyEnabled); err != nil {
			t.Fatal(err)
		}
		out[p.Namespace+"/"+p.Name] = true
	}
	return out
}

// expectNothingLost compares a shard's policies after its restart with the
// snapshot: counters never go back, the drift made meanwhile is counted
// once, nothing is adopted again.
func (f *shardFleet) expectNothingLost(t *testing.T, before shardState, drifted map[string]bool) {
	t.Helper()
	after := f.snapshot(t, "b")
	for key, was := range before.counters {
		now := after.counters[key]
		wantDrift := was.DriftCorrected
		if drifted[key] {
			wantDrift++
		}
		if now.DriftCorrected != wantDrift || now.DriftDetected < was.DriftDetected || now.NewProducts != was.NewProducts {
			t.Errorf("%s: counters %+v after the restart, before %+v (drifted meanwhile: %v)", key, now, was, drifted[key])
		}
		for id, v := range before.adopted[key] {
			if after.adopted[key][id] != v {
				t.Errorf("%s: adoption value of %s changed from %q to %q: adopted again", key, id, v, after.adopted[key][id])
			}
		}
		if after.adoption[key] != before.adoption[key] {
			t.Errorf("%s: %d Adopted Events after the restart, %d before", key, after.adoption[key], before.adoption[key])
		}
		wantPuts := 0
		if drifted[key] {
			wantPuts = 1
		}
		if w := after.puts[key] - before.puts[key]; w != wantPuts {
			t.Errorf("%s: %d writes after the restart, want %d (drifted meanwhile: %v)", key, w, wantPuts, drifted[key])
		}
	}
}

// puts counts the PUTs a tenant received.
func (f *shardFleet) puts(tenantID string) int {
	n := 0
	for _, e := range f.sim.Requests(tenantID).Entries {
		if e.Method == "PUT" {
			n++
		}
	}
	return n
}

func (f *shardFleet) leaseHolder(t *testing.T, tenantID string) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := f.env.Client.Get(context.Background(), client.ObjectKey{Namespace: shardLeaseNS, Name: "tenant-" + strings.ToLower(tenantID)}, &l); err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func isReady(p *v1.TenantPurchasePolicy) bool {
	return p.Status.ObservedGeneration == p.Generation && meta.IsStatusConditionTrue(p.Status.Conditions, v1.ReadyCondition)
}

func isConflictLost(p *v1.TenantPurchasePolicy) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, v1.StalledCondition)
	return p.Status.ObservedGeneration == p.Generation && c != nil && c.Status == metav1.ConditionTrue && c.Reason == v1.ReasonConflictLost
}

func isSuspended(p *v1.TenantPurchasePolicy) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition)
	return p.Status.ObservedGeneration == p.Generation && c != nil && c.Reason == v1.ReasonSuspended
}

func summary(p *v1.TenantPurchasePolicy) string {
	c := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition)
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
