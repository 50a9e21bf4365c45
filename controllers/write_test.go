package controllers

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// actOn runs act over a converged status whose products all drifted to
// Enabled, writing with write, WritesPerTenant at once.
func actOn(t *testing.T, ids []string, writesAtOnce int, write writeFunc) (*syncState, error) {
	t.Helper()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Generation: 1},
		Spec: v1.TenantPurchasePolicySpec{TenantID: "t", TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled)}}}
	var tenant []licensing.Item
	for _, id := range ids {
		p.Status.Products = append(p.Status.Products, v1.ProductStatus{ProductID: id, Name: id, Desired: v1.PolicyDisabled, Observed: "Disabled", AdoptedValue: "Enabled"})
		tenant = append(tenant, licensing.Item{ProductID: id, ProductName: id, PolicyValue: "Enabled"})
	}
	fc := newFakeCluster(t, nil, interceptor.Funcs{}, p)
	fc.r.WritesPerTenant = writesAtOnce
	p = fc.get(p)
	pl := plan.Compute(&p.Spec, tenant, nil, now)
	s := &syncState{policy: p, base: p.DeepCopy(), now: now, policies: fakePolicies{setProduct: write}, plan: &pl}
	return s, fc.r.act(context.Background(), s)
}

// TestWritesOfATenantGoOutAtOnce: the PUTs of one tenant are sent
// WritesPerTenant at a time (20 at adoption take a few round trips, not
// 20), still exactly one per differing product, and status and Events keep
// the product order whatever order the answers come back in.
func TestWritesOfATenantGoOutAtOnce(t *testing.T) {
	ids := []string{"P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"}
	const bound = 4
	var inFlight, most atomic.Int32
	full := make(chan struct{}) // closed once bound writes are in flight together
	var once sync.Once
	var mu sync.Mutex
	sent := map[string]int{}
	first := true
	write := func(ctx context.Context, id, value string) (*licensing.Item, error) {
		mu.Lock()
		sent[id]++
		probe := first
		first = false
		mu.Unlock()
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == bound {
			once.Do(func() { close(full) })
		}
		if !probe { // the first write goes alone; the others wait to be in flight together
			select {
			case <-full:
			case <-time.After(10 * time.Second):
				return nil, fmt.Errorf("%d writes in flight at most, want %d together", most.Load(), bound)
			}
		}
		return applies(ctx, id, value)
	}

	s, err := actOn(t, ids, bound, write)
	if err != nil {
		t.Fatal(err)
	}
	if got := most.Load(); got != bound {
		t.Errorf("%d writes were in flight at once, want exactly the bound %d", got, bound)
	}
	for _, id := range ids {
		if sent[id] != 1 {
			t.Errorf("%s written %d times, want once", id, sent[id])
		}
	}
	var corrected []string
	for _, e := range s.events {
		if e.reason == v1.EventDriftCorrected {
			corrected = append(corrected, e.note[len("set "):len("set ")+2])
		}
	}
	if diff := cmp.Diff(ids, corrected); diff != "" {
		t.Errorf("DriftCorrected Events out of product order (-want +got):\n%s", diff)
	}
	for i, ps := range s.policy.Status.Products {
		if ps.ProductID != ids[i] || ps.Observed != "Disabled" || ps.Corrections != 1 {
			t.Errorf("entry %d: %+v", i, ps)
		}
	}
}

// TestFirstWriteGoesAlone: a credential that may only read (403), or a
// throttle, on the first PUT stops every other PUT before it is sent.
func TestFirstWriteGoesAlone(t *testing.T) {
	cases := map[string]struct {
		err     error
		stalled bool
	}{
		"forbidden": {err: &m365.Error{Kind: m365.Forbidden, Op: "set product", StatusCode: 403}, stalled: true},
		"throttled": {err: &m365.Error{Kind: m365.Throttled, Op: "set product", StatusCode: 429, RetryAfter: time.Minute}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var writes, inFlight atomic.Int32
			overlap := make(chan struct{})
			var once sync.Once
			_, err := actOn(t, []string{"P1", "P2", "P3", "P4", "P5"}, 4, func(context.Context, string, string) (*licensing.Item, error) {
				n := writes.Add(1)
				if inFlight.Add(1) > 1 {
					once.Do(func() { close(overlap) })
				}
				defer inFlight.Add(-1)
				if n == 1 { // answer late enough for writes sent alongside to show
					select {
					case <-overlap:
					case <-time.After(100 * time.Millisecond):
					}
				}
				return nil, tc.err
			})
			if writes.Load() != 1 {
				t.Errorf("%d PUTs sent, want 1: the first refusal stops the others", writes.Load())
			}
			_, stalledErr := asStalled(err)
			_, waitErr := asWait(err)
			if stalledErr != tc.stalled || waitErr == tc.stalled {
				t.Errorf("act returned %v", err)
			}
		})
	}
}

// TestFailureOf: which answers to a PUT stop the run, retry the product soon
// or reject the value for good.
func TestFailureOf(t *testing.T) {
	status := func(code int, kind m365.Kind, msCode string) error {
		return &m365.Error{Kind: kind, StatusCode: code, Code: msCode}
	}
	cases := map[string]struct {
		err  error
		want failure
	}{
		"400 from Microsoft":            {status(400, m365.BadRequest, "BadRequest"), rejectsValue},
		"400 without Microsoft's error": {status(400, m365.BadRequest, ""), retriesProduct},
		"404 (replication lag)":         {status(404, m365.NotFound, "Unknown"), retriesProduct},
		"409":                           {status(409, m365.BadRequest, "Conflict"), retriesProduct},
		"412":                           {status(412, m365.BadRequest, "PreconditionFailed"), retriesProduct},
		"423":                           {status(423, m365.BadRequest, "Locked"), retriesProduct},
		"422":                           {status(422, m365.BadRequest, "Unprocessable"), rejectsValue},
		"401":                           {status(401, m365.Unauthorized, ""), stopsRun},
		"403":                           {status(403, m365.Forbidden, ""), stopsRun},
		"429":                           {status(429, m365.Throttled, ""), stopsRun},
		"503":                           {status(503, m365.Transient, ""), stopsRun},
		"not from Microsoft":            {context.DeadlineExceeded, stopsRun},
	}
	for name, tc := range cases {
		if got := failureOf(tc.err); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
}
