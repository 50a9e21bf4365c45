package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// soakRetryAfter is the Retry-After of the 429s the soak injects on PUTs.
const soakRetryAfter = "2"

// soakResult is what the soak saw. Heap and goroutines come from the
// controller's /metrics (go_memstats_heap_alloc_bytes, go_goroutines).
type soakResult struct {
	Seconds         float64 `json:"seconds"`
	Rounds          int     `json:"rounds"`
	Flips           int     `json:"flips"`
	Faults          int     `json:"injected429s"`
	Detected        int64   `json:"driftDetected"`
	Corrected       int64   `json:"driftCorrected"`
	Early           int     `json:"earlyRequests"`
	HeapStartMiB    float64 `json:"heapStartMiB"`
	HeapEndMiB      float64 `json:"heapEndMiB"`
	HeapMaxMiB      float64 `json:"heapMaxMiB"`
	GoroutinesStart float64 `json:"goroutinesStart"`
	GoroutinesEnd   float64 `json:"goroutinesEnd"`
	PeakRSSMiB      float64 `json:"controllerPeakRSSMiB"`
}

// soak flips products by hand and injects 429s on PUTs in rounds, each
// ended by a reconcile-now of the whole fleet, then checks that every flip
// was detected and corrected exactly once and that no request came before a
// Retry-After; heap and goroutines are reported per round.
func (b *bench) soak(ctx context.Context) error {
	b.say("\nsoak: %s of hand-made flips and 429s", b.o.soak)
	if b.scraper == nil {
		return fmt.Errorf("soak: the controller serves no metrics (--metrics-bind-address=0)")
	}
	if err := b.sim.admin.ResetFleetRequests(ctx); err != nil {
		return err
	}
	before, err := b.driftCounters(ctx)
	if err != nil {
		return err
	}
	m0, err := b.scraper.scrape(ctx)
	if err != nil {
		return err
	}
	products, err := b.sim.admin.Products(ctx, b.fleet.tenants[0])
	if err != nil {
		return err
	}
	s := &soakResult{HeapStartMiB: m0.HeapBytes / (1 << 20), HeapMaxMiB: m0.HeapBytes / (1 << 20), GoroutinesStart: m0.Goroutines}
	rng := rand.New(rand.NewPCG(1, 2))
	all := b.indexes(b.o.tenants)
	start := time.Now()
	for time.Since(start) < b.o.soak && ctx.Err() == nil {
		s.Rounds++
		flips, faults, err := b.soakRound(ctx, rng, products)
		if err != nil {
			return fmt.Errorf("soak round %d: %w", s.Rounds, err)
		}
		s.Flips, s.Faults = s.Flips+flips, s.Faults+faults
		if err := b.requestReconcile(ctx, all, func(p *v1.TenantPurchasePolicy) bool { return p.Status.Summary.Drifted == 0 }); err != nil {
			return fmt.Errorf("soak round %d: %w", s.Rounds, err)
		}
		m, err := b.scraper.scrape(ctx)
		if err != nil {
			return err
		}
		s.HeapEndMiB, s.GoroutinesEnd = m.HeapBytes/(1<<20), m.Goroutines
		s.HeapMaxMiB = max(s.HeapMaxMiB, s.HeapEndMiB)
		b.say("  round %d: %d flips (%d met a 429), heap %.1f MiB, goroutines %.0f", s.Rounds, flips, faults, s.HeapEndMiB, s.GoroutinesEnd)
	}
	s.Seconds = time.Since(start).Seconds()
	after, err := b.driftCounters(ctx)
	if err != nil {
		return err
	}
	ms, err := b.sim.admin.FleetRequests(ctx)
	if err != nil {
		return err
	}
	s.Detected, s.Corrected, s.Early = after.DriftDetected-before.DriftDetected, after.DriftCorrected-before.DriftCorrected, ms.EarlyRequests
	if rss, err := peakRSS(b.ctrl.Pid()); err == nil {
		s.PeakRSSMiB = mib(rss)
	}
	b.rep.Soak = s
	switch {
	case s.Early != 0:
		return fmt.Errorf("soak: %d requests arrived before a Retry-After had passed", s.Early)
	case s.Detected != int64(s.Flips) || s.Corrected != int64(s.Flips):
		return fmt.Errorf("soak: %d flips, but %d drifts detected and %d corrected", s.Flips, s.Detected, s.Corrected)
	}
	return nil
}

// soakRound flips a fifth of the fleet's (tenant, product) pairs at random
// (Copilot excepted: its rule changed in the spec phase) and makes a quarter
// of them meet a 429 on their correcting PUT.
func (b *bench) soakRound(ctx context.Context, rng *rand.Rand, products []m365sim.Product) (flips, faults int, err error) {
	flipped := map[[2]string]bool{}
	for range b.o.tenants/5 + 1 {
		tenant := b.fleet.tenants[rng.IntN(len(b.fleet.tenants))]
		p := products[rng.IntN(len(products))]
		if p.ID == copilot || flipped[[2]string{tenant, p.ID}] {
			continue // a second flip of one product is one drift
		}
		if err := b.sim.admin.SetPolicy(ctx, tenant, p.ID, m365sim.PolicyEnabled); err != nil {
			return 0, 0, err
		}
		flipped[[2]string{tenant, p.ID}] = true
		if rng.IntN(4) == 0 {
			faults++
			f := m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT", Status: 429, RetryAfter: soakRetryAfter, Count: 1}
			if err := b.sim.admin.InjectFault(ctx, tenant, f); err != nil {
				return 0, 0, err
			}
		}
	}
	return len(flipped), faults, nil
}

// driftCounters sums the lifetime drift counters of every policy.
func (b *bench) driftCounters(ctx context.Context) (v1.Counters, error) {
	var list v1.TenantPurchasePolicyList
	var sum v1.Counters
	if err := b.cp.kube.List(ctx, &list, client.InNamespace(benchNamespace)); err != nil {
		return sum, err
	}
	for _, p := range list.Items {
		sum.DriftDetected += p.Status.Counters.DriftDetected
		sum.DriftCorrected += p.Status.Counters.DriftCorrected
	}
	return sum, nil
}

func (s *soakResult) print(out io.Writer) {
	fmt.Fprintf(out, "\nsoak %.0fs: %d rounds, %d hand-made flips (%d met a 429), drift detected %d, corrected %d, early requests %d\n",
		s.Seconds, s.Rounds, s.Flips, s.Faults, s.Detected, s.Corrected, s.Early)
	fmt.Fprintf(out, "controller heap %.1f -> %.1f MiB (max %.1f), goroutines %.0f -> %.0f, peak RSS %.0f MiB\n",
		s.HeapStartMiB, s.HeapEndMiB, s.HeapMaxMiB, s.GoroutinesStart, s.GoroutinesEnd, s.PeakRSSMiB)
}
