package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// ceilingNamespace holds the policies the ceiling creates; the controller is
// stopped by then, so nothing reconciles them.
const ceilingNamespace = "bench-ceiling"

// ceiling is what the same API server accepts from a plain client with no
// client-side rate limit and the controller's concurrency.
type ceiling struct {
	Concurrency         int     `json:"concurrency"`
	Objects             int     `json:"objects"`
	CreatesPerSecond    float64 `json:"createsPerSecond"`
	StatusPatchesPerSec float64 `json:"statusPatchesPerSecond"`
	// SmallStatusPatchesPerSec is the same patch on the policies just
	// created, whose status is empty: against StatusPatchesPerSec it shows
	// what the size of a converged status costs the API server.
	SmallStatusPatchesPerSec float64 `json:"smallStatusPatchesPerSecond"`
	// StatusUpdatesPerSec is the write the controller sends (an update of
	// the status subresource) on the converged policies: against
	// StatusPatchesPerSec it shows what a merge patch costs the API server.
	StatusUpdatesPerSec float64 `json:"statusUpdatesPerSecond"`
	// The rounds the two are the medians of, in the order measured
	// (alternated: a patch round, then an update round).
	StatusPatchRounds  []float64 `json:"statusPatchRounds"`
	StatusUpdateRounds []float64 `json:"statusUpdateRounds"`
}

// measureCeiling stops the controller (so the API server serves the harness
// alone, as it served the controller alone), then times creates of new
// policies, status patches of those (empty status), and status patches and
// status updates of the fleet's converged policies (real status, optimistic
// lock, as the controller writes).
func (b *bench) measureCeiling(ctx context.Context) error {
	if err := b.ctrl.Stop(); err != nil {
		return err
	}
	c := &ceiling{Concurrency: b.args.Concurrency, Objects: b.o.ceilingObjects}
	b.say("\nceiling: %d creates, then %d status patches and %d status updates in %d alternated rounds, %d at a time, no client-side rate limit", c.Objects, c.Objects, c.Objects, ceilingRounds, c.Concurrency)
	if err := b.cp.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ceilingNamespace}}); err != nil {
		return err
	}
	d, err := timed(func() error {
		return parallel(ctx, b.indexes(c.Objects), c.Concurrency, func(ctx context.Context, i int) error {
			p := b.policyFor(i)
			p.Namespace = ceilingNamespace
			return b.cp.kube.Create(ctx, p)
		})
	})
	if err != nil {
		return fmt.Errorf("ceiling creates: %w", err)
	}
	c.CreatesPerSecond = float64(c.Objects) / d.Seconds()
	if c.SmallStatusPatchesPerSec, err = b.writeStatuses(ctx, ceilingNamespace, c, b.patchStatus); err != nil {
		return fmt.Errorf("ceiling status patches without status: %w", err)
	}
	if err := b.patchesAndUpdates(ctx, c); err != nil {
		return err
	}
	b.rep.Ceiling = c
	for _, p := range b.rep.Phases {
		p.FractionOfCeiling = p.PoliciesPerSecond / c.StatusPatchesPerSec
	}
	b.say("  %.0f creates/s, %.0f status patches/s (%.0f/s on policies with an empty status), %.0f status updates/s", c.CreatesPerSecond, c.StatusPatchesPerSec, c.SmallStatusPatchesPerSec, c.StatusUpdatesPerSec)
	return nil
}

// ceilingRounds is how many rounds of status patches and of status updates
// the ceiling alternates: the rate of one round moves by a fifth from one to
// the next on two shared cores, the median of three alternated ones far
// less, and a slow minute hits both kinds alike.
const ceilingRounds = 3

// patchesAndUpdates times ceilingRounds rounds of status patches and of
// status updates of the fleet's converged policies, alternated, and sets
// the median rate of each.
func (b *bench) patchesAndUpdates(ctx context.Context, c *ceiling) error {
	for range ceilingRounds {
		r, err := b.writeStatuses(ctx, benchNamespace, c, b.patchStatus)
		if err != nil {
			return fmt.Errorf("ceiling status patches: %w", err)
		}
		c.StatusPatchRounds = append(c.StatusPatchRounds, r)
		if r, err = b.writeStatuses(ctx, benchNamespace, c, b.updateStatus); err != nil {
			return fmt.Errorf("ceiling status updates: %w", err)
		}
		c.StatusUpdateRounds = append(c.StatusUpdateRounds, r)
	}
	b.say("  rounds: status patches %s, status updates %s per second", rates(c.StatusPatchRounds), rates(c.StatusUpdateRounds))
	c.StatusPatchesPerSec, c.StatusUpdatesPerSec = median(c.StatusPatchRounds), median(c.StatusUpdateRounds)
	return nil
}

// median is the middle of xs (len(xs) is odd).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// rates formats per-second rates as "83, 99, 129".
func rates(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(s, ", ")
}

// writeStatuses times c.Objects status writes (lastSyncTime, optimistic
// lock) of the policies in ns, c.Concurrency at a time, and returns writes
// per second.
func (b *bench) writeStatuses(ctx context.Context, ns string, c *ceiling, write func(context.Context, *v1.TenantPurchasePolicy) error) (float64, error) {
	var list v1.TenantPurchasePolicyList
	if err := b.cp.kube.List(ctx, &list, client.InNamespace(ns), client.Limit(int64(c.Objects))); err != nil {
		return 0, err
	}
	if len(list.Items) < c.Objects {
		return 0, fmt.Errorf("%d policies to write in %s, want %d", len(list.Items), ns, c.Objects)
	}
	d, err := timed(func() error {
		return parallel(ctx, list.Items, c.Concurrency, func(ctx context.Context, p v1.TenantPurchasePolicy) error {
			return write(ctx, &p)
		})
	})
	if err != nil {
		return 0, err
	}
	return float64(c.Objects) / d.Seconds(), nil
}

// patchStatus sets lastSyncTime with a merge patch of the status
// subresource, with an optimistic lock.
func (b *bench) patchStatus(ctx context.Context, p *v1.TenantPurchasePolicy) error {
	patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
	p.Status.LastSyncTime = ptr.To(metav1.Now())
	return b.cp.kube.Status().Patch(ctx, p, patch)
}

// updateStatus sets lastSyncTime with an update of the status subresource,
// locked on the resourceVersion as listed: the controller's write.
func (b *bench) updateStatus(ctx context.Context, p *v1.TenantPurchasePolicy) error {
	p.Status.LastSyncTime = ptr.To(metav1.Now())
	return b.cp.kube.Status().Update(ctx, p)
}

// timed runs fn and returns its wall time.
func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}
