package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

const (
	killTenants = 30
	killTimeout = 4 * time.Minute
	killWait    = 90 * time.Second
)

// TestSurvivesSIGKILL kills the controller binary (SIGKILL: no shutdown, no
// last status patch) three times and restarts it:
//
//  1. in the middle of adopting 30 tenants (one PUT at a time, 20 products
//     each), while tenant 0 has had its first PUT applied and answered and
//     its next ones hang (issue 10 item 2: killed right after the first PUT);
//  2. in the middle of recording takeovers of each tenant's self-service
//     purchase (users moved onto an organisation seat, the subscription
//     Warning);
//  3. in the middle of following those subscriptions to Suspended and
//     Deleted.
//
// After each restart everything converges; throughout, no lifetime counter
// of any policy ever decreases; at the end every tenant's adoption values
// are its original ones (and Restore puts them back), every takeover is
// recorded exactly once (counter, handover record, Event) and every purchase
// is announced exactly once, though a kill can fall between a status patch
// and the Events of its run.
func TestSurvivesSIGKILL(t *testing.T) {
	testsupport.SkipIfShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	f := newFleet(t, ctx, killTenants, "--latency=20ms", "--latency-jitter=5ms", "--throttle-rate=0")
	original := map[string]map[string]string{}
	bought := map[string]string{} // tenant → subscription
	for _, tn := range f.sim.Tenants {
		original[tn.ID] = f.products(t, ctx, tn.ID)
		var sub m365sim.Subscription
		f.mustSim(t, ctx, "POST", "/tenants/"+tn.ID+"/purchases", m365sim.PurchaseRequest{SkuPartNumber: m365sim.SkuCopilot}, &sub)
		bought[tn.ID] = sub.ID
	}
	first := f.sim.Tenants[0].ID
	f.mustSim(t, ctx, "POST", "/tenants/"+first+"/faults", m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Count: 1}, nil)
	f.mustSim(t, ctx, "POST", "/tenants/"+first+"/faults", m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Latency: 10 * time.Minute}, nil)
	f.createPolicies(t, ctx, func(_ int, p *v1.TenantPurchasePolicy) {
		p.Spec.Default = v1.RulePolicy(v1.PolicyDisabled)
		p.Spec.DeletionPolicy = v1.DeletionRestore
	})
	mon := f.watchCounters(ctx)
	controllerFlags := []string{"--writes-per-tenant=1", "--max-concurrent-reconciles=4"}

	// 1. Adoption, killed half-way and right after tenant 0's first PUT.
	f.startController(t, ctx, controllerFlags...)
	products := len(original[first])
	waitFor(ctx, t, "tenant 0's first PUT and a third of the fleet's", func(ctx context.Context) error {
		st, err := f.statsErr(ctx)
		if err != nil {
			return err
		}
		var log m365sim.RequestLog
		if err := f.simDo(ctx, "GET", "/tenants/"+first+"/requests", nil, &log); err != nil {
			return err
		}
		if log.Counts["licensing PUT"] < 1 || st.Counts["licensing PUT"] < killTenants*products/3 {
			return fmt.Errorf("%d PUTs of tenant 0 answered, %d of the fleet", log.Counts["licensing PUT"], st.Counts["licensing PUT"])
		}
		return nil
	})
	f.kill(t)
	putsAtKill := f.stats(t, ctx).Counts["licensing PUT"]
	if n := f.countConverged(t, ctx, 0); n == killTenants {
		t.Fatalf("every policy had converged before the kill: the kill did not interrupt convergence")
	}
	f.mustSim(t, ctx, "DELETE", "/tenants/"+first+"/faults", nil, nil)
	f.startController(t, ctx, controllerFlags...)
	ps := f.waitAll(t, ctx, killWait, "converged after the kill during adoption", func(p *v1.TenantPurchasePolicy) bool {
		return converged(p) && p.Status.Subscriptions != nil && p.Status.Summary.SelfServiceSubscriptions == 1
	})
	for i, tn := range f.sim.Tenants {
		p := ps[policyName(i)]
		for _, e := range p.Status.Products {
			if want := original[tn.ID][e.ProductID]; e.AdoptedValue != want {
				t.Errorf("%s: %s adopted as %q, the tenant's original value was %q", p.Name, e.ProductID, e.AdoptedValue, want)
			}
		}
		if len(p.Status.Products) != products {
			t.Errorf("%s: %d products in status, the tenant has %d", p.Name, len(p.Status.Products), products)
		}
		if p.Status.Counters != (v1.Counters{}) {
			t.Errorf("%s: adoption counted as drift or handover after the restart: %+v", p.Name, p.Status.Counters)
		}
	}

	// 2. Takeovers, killed while they are being recorded.
	for _, tn := range f.sim.Tenants {
		f.mustSim(t, ctx, "POST", "/tenants/"+tn.ID+"/subscriptions/"+bought[tn.ID]+"/takeover", nil, nil)
	}
	f.reconcileNow(t, ctx)
	f.killWhen(t, ctx, "a takeover recorded", func(p *v1.TenantPurchasePolicy) bool { return p.Status.Counters.Takeovers > 0 })
	f.startController(t, ctx, controllerFlags...)
	f.waitAll(t, ctx, killWait, "every takeover recorded after the kill", func(p *v1.TenantPurchasePolicy) bool { return p.Status.Counters.Takeovers == 1 })

	// 3. The taken-over subscriptions go Suspended, then Deleted.
	for _, status := range []string{m365sim.StatusSuspended, m365sim.StatusDeleted} {
		for _, tn := range f.sim.Tenants {
			f.mustSim(t, ctx, "POST", "/tenants/"+tn.ID+"/subscriptions/"+bought[tn.ID]+"/advance", map[string]string{"to": status}, nil)
		}
		stamp := f.reconcileNow(t, ctx)
		handled := func(p *v1.TenantPurchasePolicy) bool {
			return p.Status.LastHandledReconcileAt == stamp && selfServiceStatus(p, bought[p.Spec.TenantID]) == status
		}
		if status == m365sim.StatusSuspended {
			f.killWhen(t, ctx, "a subscription seen "+status, handled)
			f.startController(t, ctx, controllerFlags...)
		}
		f.waitAll(t, ctx, killWait, "every subscription seen "+status, handled)
	}

	ps, err := f.policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range f.sim.Tenants {
		p := ps[policyName(i)]
		if want := (v1.Counters{Takeovers: 1}); p.Status.Counters != want {
			t.Errorf("%s: counters %+v, want %+v", p.Name, p.Status.Counters, want)
		}
		var records int
		for _, h := range p.Status.Subscriptions.Handovers {
			if h.SubscriptionID == bought[tn.ID] {
				records++
				if h.Verdict != v1.VerdictTakenOver {
					t.Errorf("%s: handover %s recorded as %s", p.Name, h.SubscriptionID, h.Verdict)
				}
			}
		}
		if records != 1 {
			t.Errorf("%s: %d handover records of %s, want 1", p.Name, records, bought[tn.ID])
		}
		for _, reason := range []string{v1.EventSelfServicePurchase, v1.EventTakeoverDetected} {
			if n := f.eventNotes(t, ctx, p, reason); n != 1 {
				t.Errorf("%s: %s announced %d times, want once", p.Name, reason, n)
			}
		}
	}
	mon.stop(t)

	// Restore after all of it puts back the tenant's original values.
	for i, tn := range f.sim.Tenants[:3] {
		if err := f.k8s.Delete(ctx, ps[policyName(i)]); err != nil {
			t.Fatal(err)
		}
		waitFor(ctx, t, "Restore of "+policyName(i), func(ctx context.Context) error {
			if err := f.k8s.Get(ctx, client.ObjectKeyFromObject(ps[policyName(i)]), &v1.TenantPurchasePolicy{}); err == nil {
				return fmt.Errorf("%s still there", policyName(i))
			}
			return nil
		})
		for id, v := range f.products(t, ctx, tn.ID) {
			if v != original[tn.ID][id] {
				t.Errorf("%s after Restore: %s is %s, was %s before the policy", tn.ID, id, v, original[tn.ID][id])
			}
		}
	}
	st := f.stats(t, ctx)
	t.Logf("SIGKILL run: %d tenants × %d products, %d restarts (first after %d of %d adoption PUTs, tenant 0 right after its first); "+
		"%d requests in all (licensing PUT %d, graph GET %d, token POST %d); %d counter observations, none decreasing",
		killTenants, products, f.restarts, putsAtKill, killTenants*products, st.Counts["authority POST"]+st.Counts["licensing GET"]+st.Counts["licensing PUT"]+st.Counts["graph GET"],
		st.Counts["licensing PUT"], st.Counts["graph GET"], st.Counts["authority POST"], mon.observations)
}

// killWhen SIGKILLs the controller once done holds for some but not all
// policies, so the kill falls in the middle of the fleet's work.
func (f *fleet) killWhen(t *testing.T, ctx context.Context, what string, done func(*v1.TenantPurchasePolicy) bool) {
	t.Helper()
	waitFor(ctx, t, what+" by some policy", func(ctx context.Context) error {
		ps, err := f.policies(ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, p := range ps {
			if done(p) {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("no policy yet")
		}
		if n == len(ps) {
			t.Fatalf("%s: every policy done before the kill; it did not interrupt anything", what)
		}
		return nil
	})
	f.kill(t)
}

func selfServiceStatus(p *v1.TenantPurchasePolicy, id string) string {
	if p.Status.Subscriptions == nil {
		return ""
	}
	for _, e := range p.Status.Subscriptions.SelfService {
		if e.ID == id {
			return e.Status
		}
	}
	return ""
}

// eventNotes counts the notes of a policy's Events of reason (a series
// counts once per occurrence).
func (f *fleet) eventNotes(t *testing.T, ctx context.Context, p *v1.TenantPurchasePolicy, reason string) int {
	t.Helper()
	var list eventsv1.EventList
	if err := f.k8s.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name == p.Name && e.Reason == reason {
			n++
			if e.Series != nil {
				n += int(e.Series.Count) - 1
			}
		}
	}
	return n
}

func (f *fleet) statsErr(ctx context.Context) (m365sim.RequestStats, error) {
	var st m365sim.RequestStats
	err := f.simDo(ctx, "GET", "/requests", nil, &st)
	return st, err
}

// counterWatch polls every policy's lifetime counters and remembers any
// that decreased.
type counterWatch struct {
	cancel       context.CancelFunc
	done         chan struct{}
	mu           sync.Mutex
	decreases    []string
	observations int
}

func (f *fleet) watchCounters(ctx context.Context) *counterWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &counterWatch{cancel: cancel, done: make(chan struct{})}
	last := map[string]v1.Counters{}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if ps, err := f.policies(ctx); err == nil {
				w.mu.Lock()
				for name, p := range ps {
					c, prev := p.Status.Counters, last[name]
					if c.DriftDetected < prev.DriftDetected || c.DriftCorrected < prev.DriftCorrected || c.NewProducts < prev.NewProducts ||
						c.Takeovers < prev.Takeovers || c.Cancellations < prev.Cancellations || c.Expiries < prev.Expiries {
						w.decreases = append(w.decreases, fmt.Sprintf("%s: %+v after %+v", name, c, prev))
					}
					last[name] = c
					w.observations++
				}
				w.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return w
}

func (w *counterWatch) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.decreases {
		t.Errorf("a lifetime counter decreased: %s", d)
	}
}
