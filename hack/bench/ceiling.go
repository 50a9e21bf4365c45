package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
}

// measureCeiling stops the controller (so the API server serves the harness
// alone, as it served the controller alone), then times creates of new
// policies, status patches of those (empty status) and status patches of
// the fleet's converged policies (real status, optimistic lock, as the
// controller patches).
func (b *bench) measureCeiling(ctx context.Context) error {
	if err := b.ctrl.Stop(); err != nil {
		return err
	}
	c := &ceiling{Concurrency: b.args.Concurrency, Objects: b.o.ceilingObjects}
	b.say("\nceiling: %d creates and %d status patches, %d at a time, no client-side rate limit", c.Objects, c.Objects, c.Concurrency)
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
	if c.SmallStatusPatchesPerSec, err = b.patchStatuses(ctx, ceilingNamespace, c); err != nil {
		return fmt.Errorf("ceiling status patches without status: %w", err)
	}
	if c.StatusPatchesPerSec, err = b.patchStatuses(ctx, benchNamespace, c); err != nil {
		return fmt.Errorf("ceiling status patches: %w", err)
	}
	b.rep.Ceiling = c
	for _, p := range b.rep.Phases {
		p.FractionOfCeiling = p.PoliciesPerSecond / c.StatusPatchesPerSec
	}
	b.say("  %.0f creates/s, %.0f status patches/s (%.0f/s on policies with an empty status)", c.CreatesPerSecond, c.StatusPatchesPerSec, c.SmallStatusPatchesPerSec)
	return nil
}

// patchStatuses times c.Objects status patches (lastSyncTime, optimistic
// lock, as the controller patches) of the policies in ns, c.Concurrency at a
// time, and returns patches per second.
func (b *bench) patchStatuses(ctx context.Context, ns string, c *ceiling) (float64, error) {
	var list v1.TenantPurchasePolicyList
	if err := b.cp.kube.List(ctx, &list, client.InNamespace(ns), client.Limit(int64(c.Objects))); err != nil {
		return 0, err
	}
	if len(list.Items) < c.Objects {
		return 0, fmt.Errorf("%d policies to patch in %s, want %d", len(list.Items), ns, c.Objects)
	}
	now := metav1.Now()
	d, err := timed(func() error {
		return parallel(ctx, list.Items, c.Concurrency, func(ctx context.Context, p v1.TenantPurchasePolicy) error {
			patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
			p.Status.LastSyncTime = &now
			return b.cp.kube.Status().Patch(ctx, &p, patch)
		})
	})
	if err != nil {
		return 0, err
	}
	return float64(c.Objects) / d.Seconds(), nil
}

// timed runs fn and returns its wall time.
func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}
