package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The fault run's shape: how many tenants, how Microsoft misbehaves, and
// how long each phase may take.
const (
	faultTenants     = 200
	faultErrorRate   = 0.2  // 5xx, a quarter of them 503 with Retry-After
	faultDropRate    = 0.02 // connections closed without an answer
	faultRetryAfter  = "1"
	faultTimeout     = 4 * time.Minute
	faultChaosPhase  = 75 * time.Second
	faultRecoverTime = 75 * time.Second
	// faultInFlight: a request this soon after a Retry-After answer to its
	// tenant may have left before the answer arrived (m365sim --in-flight).
	faultInFlight = 200 * time.Millisecond
)

// faultRules are the products every policy disables (default Enabled): the
// simulator's tenants start with every product Enabled, so the floor is one
// PUT per rule and tenant.
var faultRules = []string{"CFQ7TTC0MM8R", "CFQ7TTC0H9MP", "CFQ7TTC0J1FV"}

// TestConvergesThroughFaults runs the controller binary against the
// simulator binary with 200 tenants while 20% of licensing and Graph calls
// answer 5xx (a quarter of them 503 with Retry-After), 2% are dropped,
// every call has latency, each tenant's app is throttled (429 with
// Retry-After once its bucket is empty) and a quarter of the tenants get an
// extra 429 with Retry-After on their first PUT (another quarter on Graph).
// Every policy must converge (most while the faults go on; the rest once
// they stop, asked to reconcile now so the test does not wait out backoff),
// no request may arrive before a Retry-After the simulator sent had passed,
// and each tenant must receive exactly its floor of successful writes: the
// only extra PUTs are retries of failed ones.
func TestConvergesThroughFaults(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), faultTimeout)
	defer cancel()
	start := time.Now()
	f := newFleet(t, ctx, faultTenants,
		"--latency=10ms", "--latency-jitter=10ms", "--throttle-rate=5", "--throttle-burst=3",
		fmt.Sprintf("--error-rate=%g", faultErrorRate), fmt.Sprintf("--drop-rate=%g", faultDropRate),
		"--error-retry-after="+faultRetryAfter, "--chaos-endpoints=licensing,graph",
		// A tenant's writes go out --writes-per-tenant at a time: one sent
		// before a sibling's 429 came back is in flight, not early.
		"--in-flight="+faultInFlight.String())
	floor := map[string]int{}
	for i, tn := range f.sim.Tenants {
		before := f.products(t, ctx, tn.ID)
		for _, id := range faultRules {
			if before[id] != string(v1.PolicyDisabled) {
				floor[tn.ID]++
			}
		}
		switch i % 4 {
		case 0:
			f.mustSim(t, ctx, "POST", "/tenants/"+tn.ID+"/faults", m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Status: 429, RetryAfter: "2", Count: 1}, nil)
		case 1:
			f.mustSim(t, ctx, "POST", "/tenants/"+tn.ID+"/faults", m365sim.Fault{Endpoint: m365sim.EndpointGraph, Status: 429, RetryAfter: "3", Count: 1}, nil)
		}
	}
	f.createPolicies(t, ctx, func(_ int, p *v1.TenantPurchasePolicy) {
		p.Spec.Default = v1.RulePolicy(v1.PolicyEnabled)
		for _, id := range faultRules {
			p.Spec.Products = append(p.Spec.Products, v1.ProductRule{ProductID: id, Policy: v1.RulePolicy(v1.PolicyDisabled)})
		}
	})
	setup := time.Since(start)

	begin := time.Now()
	f.startController(t, ctx, "--max-concurrent-reconciles=8")
	duringChaos := f.countConverged(t, ctx, faultChaosPhase)
	chaosWall := time.Since(begin)
	f.mustSim(t, ctx, "PUT", "/traffic", map[string]any{"chaos": m365sim.Chaos{}}, nil)
	if duringChaos < faultTenants {
		f.reconcileNowPending(t, ctx)
	}
	f.waitAll(t, ctx, faultRecoverTime, "converged after the faults stopped", converged)
	wall := time.Since(begin)

	st := f.stats(t, ctx)
	if st.EarlyRequests != 0 {
		t.Errorf("%d requests arrived before a Retry-After the simulator had sent passed", st.EarlyRequests)
	}
	puts, failedPuts := 0, 0
	for _, tn := range f.sim.Tenants {
		values := f.products(t, ctx, tn.ID)
		for id, v := range values {
			want := string(v1.PolicyEnabled)
			for _, r := range faultRules {
				if r == id {
					want = string(v1.PolicyDisabled)
				}
			}
			if v != want {
				t.Errorf("tenant %s: %s is %s, wants %s", tn.ID, id, v, want)
			}
		}
		log := f.requests(t, ctx, tn.ID)
		ok := log.Counts["licensing PUT"] - log.Failed["licensing PUT"]
		if ok != floor[tn.ID] {
			t.Errorf("tenant %s: %d successful PUTs (%d sent, %d failed), want exactly the floor %d", tn.ID, ok, log.Counts["licensing PUT"], log.Failed["licensing PUT"], floor[tn.ID])
		}
		if log.EarlyRequests != 0 {
			t.Errorf("tenant %s: %d early requests", tn.ID, log.EarlyRequests)
		}
		puts += log.Counts["licensing PUT"]
		failedPuts += log.Failed["licensing PUT"]
	}
	total, failed := 0, 0
	for _, k := range []string{"authority GET", "authority POST", "licensing GET", "licensing PUT", "graph GET"} {
		total += st.Counts[k]
		failed += st.Failed[k]
	}
	t.Logf("fault run: %d tenants, %.0f%% 5xx (503 with Retry-After %s s), %.0f%% dropped, latency 10±10 ms, throttle 5/s burst 3, "+
		"429 with Retry-After on %d tenants' first PUT and %d tenants' Graph; setup %s; %d/%d converged during %s of faults, all %d after %s; "+
		"%d requests (%d failed, %d throttled, %d early): licensing GET %d, PUT %d (floor %d + %d retries of failed PUTs), graph GET %d, token POST %d",
		faultTenants, faultErrorRate*100, faultRetryAfter, faultDropRate*100, faultTenants/4, faultTenants/4, setup.Round(time.Second),
		duringChaos, faultTenants, chaosWall.Round(time.Second), faultTenants, wall.Round(time.Second),
		total, failed, st.Throttled, st.EarlyRequests, st.Counts["licensing GET"], puts, puts-failedPuts, failedPuts, st.Counts["graph GET"], st.Counts["authority POST"])
}

// countConverged waits up to d for every policy to converge and returns how
// many did.
func (f *fleet) countConverged(t *testing.T, ctx context.Context, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := 0
		if ps, err := f.policies(ctx); err == nil {
			for _, p := range ps {
				if converged(p) {
					n++
				}
			}
		}
		if n == len(f.sim.Tenants) || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reconcileNowPending asks every policy that has not converged to run now,
// as an operator would after an outage, instead of waiting out its backoff.
func (f *fleet) reconcileNowPending(t *testing.T, ctx context.Context) {
	t.Helper()
	ps, err := f.policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	for _, p := range ps {
		if converged(p) {
			continue
		}
		if err := f.annotate(ctx, p, stamp); err != nil {
			t.Fatal(err)
		}
	}
}
