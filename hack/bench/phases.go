package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// The fleet's policy: every product Disabled except Microsoft 365 Copilot,
// which allows trials; the spec phase allows Copilot outright.
const (
	copilot    = "CFQ7TTC0MM8R"
	copilotOld = v1.RulePolicy(v1.PolicyOnlyTrials)
	copilotNew = v1.RulePolicy(v1.PolicyEnabled)
)

// policyFor is the fleet's policy of tenant i.
func (b *bench) policyFor(i int) *v1.TenantPurchasePolicy {
	return &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: b.names[i], Namespace: benchNamespace},
		Spec: v1.TenantPurchasePolicySpec{
			TenantID: b.fleet.tenants[i],
			TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:     v1.Auth{ClientID: b.fleet.clientID, ClientSecretRef: &v1.SecretKeyRef{Name: partnerSecret, Key: secretKey}},
				Default:  v1.RulePolicy(v1.PolicyDisabled),
				Products: []v1.ProductRule{{ProductID: copilot, Policy: copilotOld}},
			},
		},
	}
}

// differingAtAdoption counts the products the fleet's policy changes in a
// tenant as Microsoft ships it, and picks a product to flip by hand.
func differingAtAdoption(products []m365sim.Product) (int, string) {
	n, flip := 0, ""
	for _, p := range products {
		want := string(v1.PolicyDisabled)
		if p.ID == copilot {
			want = string(copilotOld)
		}
		if p.PolicyValue != want {
			n++
		}
		if flip == "" && p.ID != copilot {
			flip = p.ID
		}
	}
	return n, flip
}

// phase is what one phase measured.
type phase struct {
	Name              string    `json:"name"`
	Policies          int       `json:"policies"`
	WallSeconds       float64   `json:"wallSeconds"`
	PoliciesPerSecond float64   `json:"policiesPerSecond"`
	FractionOfCeiling float64   `json:"fractionOfStatusPatchCeiling"`
	Reconciles        int       `json:"reconciles"`
	ReconcilesFrom    string    `json:"reconcilesFrom"`
	Microsoft         msReport  `json:"microsoft"`
	APIServer         apiReport `json:"apiServer"`
	CPUSeconds        float64   `json:"controllerCPUSeconds"`
	CPUPer1000        float64   `json:"controllerCPUSecondsPer1000Reconciles"`
	// ProcessCPU is the CPU seconds of every process of the run in the
	// phase: where the two cores went.
	ProcessCPU   map[string]float64 `json:"processCPUSeconds"`
	PeakRSSBytes int64              `json:"controllerPeakRSSBytes"`
	// Latency is set for the spec phase.
	Latency *latency `json:"latency,omitempty"`
}

// apiReport is the controller's API-server requests in a phase.
type apiReport struct {
	Requests     map[string]int     `json:"requests"`
	PerReconcile map[string]float64 `json:"perReconcile"`
	Failed       map[string]int     `json:"failed,omitempty"`
	// Latency is how long the API server took to answer (audit log:
	// received to response complete).
	Latency map[string]quantiles `json:"serverLatency"`
}

// quantiles of a set of durations, in milliseconds.
type quantiles struct {
	P50 float64 `json:"p50ms"`
	P99 float64 `json:"p99ms"`
}

func quantilesOf(d []time.Duration) quantiles {
	slices.Sort(d)
	return quantiles{P50: ms(quantile(d, 0.50)), P99: ms(quantile(d, 0.99))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// latency is the spec change → Ready latency.
type latency struct {
	Samples      int     `json:"samples"`
	RatePerSec   float64 `json:"changesPerSecond"`
	P50Seconds   float64 `json:"p50Seconds"`
	P99Seconds   float64 `json:"p99Seconds"`
	MaxSeconds   float64 `json:"maxSeconds"`
	durationsRaw []time.Duration
}

// runPhases runs cold, resync, drift and spec, and the soak if asked.
func (b *bench) runPhases(ctx context.Context) error {
	all := b.indexes(b.o.tenants)
	drifted := b.indexes(int(math.Ceil(float64(b.o.tenants) * b.o.driftPercent / 100)))
	sample := b.indexes(b.o.specSamples)
	b.rep.LoadAverage[0] = loadAverage()
	steps := []struct {
		name string
		idx  []int
		fl   floor
		run  func(context.Context, []int) (*latency, error)
	}{
		{"cold", all, floor{syncs: len(all), puts: len(all) * b.differing, tokens: len(all) * tokenResources}, b.cold},
		{"resync", all, floor{syncs: len(all)}, b.resync},
		{"drift", drifted, floor{syncs: len(drifted), puts: len(drifted)}, b.drift},
		{"spec", sample, floor{syncs: len(sample), puts: len(sample)}, b.specChange},
	}
	for _, s := range steps {
		b.say("\n%s: %d policies", s.name, len(s.idx))
		p, err := b.measure(ctx, s.name, len(s.idx), s.fl, func(ctx context.Context) (*latency, error) { return s.run(ctx, s.idx) })
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		b.say("  done in %.1fs: %.1f policies/s, Microsoft requests/floor %.2f, %d reconciles",
			p.WallSeconds, p.PoliciesPerSecond, p.Microsoft.Ratio, p.Reconciles)
		b.rep.Phases = append(b.rep.Phases, p)
		if s.name == "cold" {
			if err := b.measureObjects(ctx); err != nil {
				return fmt.Errorf("sizing the policies: %w", err)
			}
		}
	}
	if b.o.soak > 0 {
		return b.soak(ctx)
	}
	return nil
}

// indexes spreads n tenant indexes evenly over the fleet.
func (b *bench) indexes(n int) []int {
	out := make([]int, 0, n)
	for i := range n {
		out = append(out, i*b.o.tenants/n)
	}
	return out
}

// measure runs one phase and collects its cost: wall time, Microsoft
// requests against the floor, and what the controller spent (costs).
func (b *bench) measure(ctx context.Context, name string, n int, fl floor, run func(context.Context) (*latency, error)) (*phase, error) {
	if err := b.sim.admin.ResetFleetRequests(ctx); err != nil {
		return nil, err
	}
	if err := b.cp.audit.read(newAuditTally()); err != nil { // skip what came before
		return nil, err
	}
	before := b.snapshot(ctx)
	start := time.Now()
	b.prof.start(ctx, name, b.say)
	lat, err := run(ctx)
	wall := time.Since(start)
	b.prof.wait() // a profile longer than the phase delays only the settling
	if err != nil {
		return nil, err
	}
	p := &phase{Name: name, Policies: n, WallSeconds: wall.Seconds(), PoliciesPerSecond: float64(n) / wall.Seconds(), Latency: lat}
	tally := newAuditTally()
	if err := b.settle(ctx, tally); err != nil {
		return nil, err
	}
	ms, err := b.sim.admin.FleetRequests(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.costs(ctx, p, before, tally); err != nil {
		return nil, err
	}
	p.Microsoft = compareWithFloor(ms, fl, p.Reconciles)
	return p, nil
}

// snapshot is what a phase's costs are measured from.
type snapshot struct {
	cpu     map[string]float64
	metrics *sample // nil without metrics
}

func (b *bench) snapshot(ctx context.Context) snapshot {
	m, _ := b.scrape(ctx)
	return snapshot{cpu: b.processCPU(), metrics: m}
}

// costs fills in what the phase cost since before: CPU of every process,
// the controller's peak RSS, its reconciles (metrics, else status patches)
// and its API-server requests per reconcile (audit log).
func (b *bench) costs(ctx context.Context, p *phase, before snapshot, tally *auditTally) error {
	p.ProcessCPU = b.processCPU()
	for proc, c := range before.cpu {
		p.ProcessCPU[proc] -= c
	}
	p.CPUSeconds = p.ProcessCPU["controller"]
	var err error
	if p.PeakRSSBytes, err = peakRSS(b.ctrl.Pid()); err != nil {
		return err
	}
	if m, err := b.scrape(ctx); err == nil && before.metrics != nil {
		p.Reconciles, p.ReconcilesFrom = int(m.Reconciles-before.metrics.Reconciles), metricReconciles
	} else {
		p.Reconciles, p.ReconcilesFrom = tally.Requests[statusWrite], "status writes (audit log)"
	}
	p.APIServer = apiReport{Requests: tally.Requests, PerReconcile: map[string]float64{}, Failed: tally.Failed, Latency: map[string]quantiles{}}
	for k, d := range tally.latency {
		p.APIServer.Latency[k] = quantilesOf(d)
	}
	if p.Reconciles > 0 {
		for k, v := range tally.Requests {
			p.APIServer.PerReconcile[k] = float64(v) / float64(p.Reconciles)
		}
		p.CPUPer1000 = p.CPUSeconds / float64(p.Reconciles) * 1000
	}
	return nil
}

// scrape reads the controller's metrics; nil without a metrics endpoint.
func (b *bench) scrape(ctx context.Context) (*sample, error) {
	if b.scraper == nil {
		return nil, fmt.Errorf("the controller serves no metrics")
	}
	s, err := b.scraper.scrape(ctx)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// parallel runs fn for every item, workers at a time, and stops at the
// first error.
func parallel[T any](ctx context.Context, items []T, workers int, fn func(context.Context, T) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, it := range items {
		g.Go(func() error { return fn(ctx, it) })
	}
	return g.Wait()
}

// forEach runs fn for the given tenant indexes as many at a time as the
// controller reconciles (the ceiling's concurrency too): with fewer, a
// phase would time how fast the harness writes, not how fast the
// controller converges.
func (b *bench) forEach(ctx context.Context, idx []int, fn func(context.Context, int) error) error {
	return parallel(ctx, idx, b.args.Concurrency, fn)
}

// waitFor waits until every named policy meets its condition.
func (b *bench) waitFor(ctx context.Context, label string, w *waiter, n int) (map[string]time.Time, error) {
	return b.track.wait(ctx, w, label, n, b.o.phaseTimeout, b.alive)
}

func (b *bench) same(idx []int, cond func(*v1.TenantPurchasePolicy) bool) map[string]func(*v1.TenantPurchasePolicy) bool {
	out := make(map[string]func(*v1.TenantPurchasePolicy) bool, len(idx))
	for _, i := range idx {
		out[b.names[i]] = cond
	}
	return out
}

// cold creates every policy and waits until each is Ready for its
// generation.
func (b *bench) cold(ctx context.Context, idx []int) (*latency, error) {
	w := b.track.watch(b.same(idx, func(p *v1.TenantPurchasePolicy) bool { return readyFor(p, 1) }))
	if err := b.forEach(ctx, idx, func(ctx context.Context, i int) error { return b.cp.kube.Create(ctx, b.policyFor(i)) }); err != nil {
		return nil, err
	}
	_, err := b.waitFor(ctx, "ready", w, len(idx))
	return nil, err
}

// requestReconcile sets the reconcile-now annotation on the policies and
// waits until each has handled it, is Ready and meets extra.
func (b *bench) requestReconcile(ctx context.Context, idx []int, extra func(*v1.TenantPurchasePolicy) bool) error {
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	w := b.track.watch(b.same(idx, func(p *v1.TenantPurchasePolicy) bool {
		return p.Status.LastHandledReconcileAt == stamp && readyFor(p, p.Generation) && extra(p)
	}))
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1.RequestedAtAnnotation, stamp))
	if err := b.forEach(ctx, idx, func(ctx context.Context, i int) error {
		// As metadata: the answer is the policy's metadata, not the whole
		// object, so the harness spends no CPU decoding a status it ignores.
		p := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: b.names[i], Namespace: benchNamespace}}
		p.SetGroupVersionKind(v1.GroupVersion.WithKind("TenantPurchasePolicy"))
		return b.cp.kube.Patch(ctx, p, client.RawPatch("application/merge-patch+json", patch))
	}); err != nil {
		return err
	}
	_, err := b.waitFor(ctx, "handled", w, len(idx))
	return err
}

// resync asks every policy to reconcile now.
func (b *bench) resync(ctx context.Context, idx []int) (*latency, error) {
	return nil, b.requestReconcile(ctx, idx, func(*v1.TenantPurchasePolicy) bool { return true })
}

// drift flips one product in each given tenant by hand (as an admin in the
// admin center would), then asks their policies to reconcile now and waits
// until each corrected exactly that drift.
func (b *bench) drift(ctx context.Context, idx []int) (*latency, error) {
	corrected := map[string]int64{}
	for _, i := range idx {
		p, ok := b.track.get(b.names[i])
		if !ok {
			return nil, fmt.Errorf("policy %s is not in the informer", b.names[i])
		}
		corrected[p.Name] = p.Status.Counters.DriftCorrected
	}
	if err := b.forEach(ctx, idx, func(ctx context.Context, i int) error {
		return b.sim.admin.SetPolicy(ctx, b.fleet.tenants[i], b.flipProduct, m365sim.PolicyEnabled)
	}); err != nil {
		return nil, err
	}
	return nil, b.requestReconcile(ctx, idx, func(p *v1.TenantPurchasePolicy) bool {
		return p.Status.Summary.Drifted == 0 && p.Status.Counters.DriftCorrected == corrected[p.Name]+1
	})
}

// specChange changes the Copilot rule of the given policies at
// -spec-rate changes per second and measures, for each, the time from the
// update's response to Ready for the new generation.
func (b *bench) specChange(ctx context.Context, idx []int) (*latency, error) {
	type target struct {
		generation int64
		sent       time.Time
	}
	var mu sync.Mutex
	targets := map[string]target{}
	w := b.track.watch(b.same(idx, func(p *v1.TenantPurchasePolicy) bool {
		mu.Lock()
		t, ok := targets[p.Name]
		mu.Unlock()
		return ok && readyFor(p, t.generation)
	}))
	tick := time.NewTicker(time.Duration(float64(time.Second) / b.o.specRate))
	defer tick.Stop()
	for _, i := range idx {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		base := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: b.names[i], Namespace: benchNamespace}}
		p := base.DeepCopy()
		p.Spec.Products = []v1.ProductRule{{ProductID: copilot, Policy: copilotNew}}
		if err := b.cp.kube.Patch(ctx, p, client.MergeFrom(base)); err != nil {
			return nil, err
		}
		mu.Lock()
		targets[p.Name] = target{generation: p.Generation, sent: time.Now()}
		mu.Unlock()
		b.track.recheck(w, p.Name)
	}
	doneAt, err := b.waitFor(ctx, "ready for the new generation", w, len(idx))
	if err != nil {
		return nil, err
	}
	lat := &latency{Samples: len(idx), RatePerSec: b.o.specRate}
	for name, t := range targets {
		lat.durationsRaw = append(lat.durationsRaw, doneAt[name].Sub(t.sent))
	}
	q := quantilesOf(lat.durationsRaw)
	lat.P50Seconds, lat.P99Seconds = q.P50/1000, q.P99/1000
	lat.MaxSeconds = lat.durationsRaw[len(lat.durationsRaw)-1].Seconds()
	return lat, nil
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
