package controllers

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// DefaultWritesPerTenant is how many PUTs of one tenant are in flight at
// once unless the reconciler says otherwise.
const DefaultWritesPerTenant = 4

// writeAll sends the writes the run decided, exactly one per product. The
// first goes alone, so a refused credential, a missing permission or a
// throttle stops every other before it is sent; the rest go WritesPerTenant
// at a time, started in list order. One whose failure must stop the run (a
// throttle, a refused credential, a 5xx, the deadline) keeps those not yet
// started from being sent (the clients' not-before gate refuses them too),
// and the first such failure in list order is what the run reports, so
// status, Events and the outcome never depend on which answer came first.
func (r *TenantPurchasePolicyReconciler) writeAll(ctx context.Context, s *syncState, lists ...[]*change) error {
	var jobs []*change
	for _, l := range lists {
		for _, c := range l {
			if c.set != nil {
				jobs = append(jobs, c)
			}
		}
	}
	var stopped atomic.Bool
	send := func(c *change) {
		if stopped.Load() {
			return
		}
		c.echo, c.err = c.set(ctx, c.t.ID, string(c.t.Desired))
		c.sent = true
		r.Metrics.write(s.policy, c.err)
		if c.err != nil && failureOf(c.err) == stopsRun {
			stopped.Store(true)
		}
	}
	if len(jobs) > 0 {
		send(jobs[0])
	}
	var g errgroup.Group
	g.SetLimit(r.writesPerTenant())
	for _, c := range jobs[min(1, len(jobs)):] {
		g.Go(func() error { send(c); return nil })
	}
	_ = g.Wait() // send returns nothing; the results are on the changes
	for _, c := range jobs {
		if c.sent && c.err != nil && failureOf(c.err) == stopsRun {
			return classify(c.err)
		}
	}
	return nil
}

func (r *TenantPurchasePolicyReconciler) writesPerTenant() int {
	if r.WritesPerTenant > 0 {
		return r.WritesPerTenant
	}
	return DefaultWritesPerTenant
}

// failure is what a failed write means beyond its product.
type failure int

const (
	// stopsRun: the remaining writes wait (throttle, auth, 5xx, timeout).
	stopsRun failure = iota
	// retriesProduct: this product is tried again soon (Microsoft has not
	// caught up with a product it lists: 404, 409, 412, 423, or a 400 that
	// is not Microsoft's answer); the other products are still written.
	retriesProduct
	// rejectsValue: Microsoft refused the value for good (its own 400).
	rejectsValue
)

// failureOf classifies a failed write.
func failureOf(err error) failure {
	e, ok := m365.AsError(err)
	if !ok {
		return stopsRun
	}
	switch {
	case e.Kind == m365.NotFound, e.StatusCode == http.StatusConflict, e.StatusCode == http.StatusPreconditionFailed,
		e.StatusCode == http.StatusLocked, e.StatusCode == http.StatusBadRequest && e.Code == "":
		return retriesProduct
	case e.Kind == m365.BadRequest:
		return rejectsValue
	}
	return stopsRun
}

// recordWrite completes a change with the answer to its write.
func (r *TenantPurchasePolicyReconciler) recordWrite(s *syncState, c *change) {
	if c.err == nil {
		s.accepted(c)
		return
	}
	if d := c.correcting; d != nil {
		d.Action = v1.DriftCorrectionFailed
	}
	s.event(eventWarning, v1.EventWriteFailed, "setting %s (%s) to %s failed: %v", c.t.ID, c.t.Name, c.t.Desired, c.err)
	switch failureOf(c.err) {
	case rejectsValue:
		// Permanent for this value: recorded once, not re-sent until the spec
		// changes or the rejection expires.
		now := metav1.NewTime(s.now)
		c.st.Rejected, c.st.RejectedGeneration, c.st.RejectedAt = truncate(c.err.Error(), v1.MaxRejectedLength), s.policy.Generation, &now
		s.softStall(v1.ReasonRejected, "Microsoft rejected %s=%s: %v", c.t.ID, c.t.Desired, c.err)
	case retriesProduct:
		s.softRetry(fmt.Errorf("setting %s (%s) to %s: %w; tried again with backoff (Microsoft may still be adding the product)", c.t.ID, c.t.Name, c.t.Desired, c.err))
	}
}

// accepted records a write Microsoft accepted. Its answer decides: the old
// value means not applied (unconfirmed); the value written confirms it (the
// next list still checks that it stayed: confirmPending); no item leaves it
// pending until the next list.
func (s *syncState) accepted(c *change) {
	now := metav1.NewTime(s.now)
	c.st.LastWriteTime = &now
	want := string(c.t.Desired)
	answered := ""
	if c.echo != nil {
		answered = c.echo.PolicyValue
	}
	switch {
	case answered != "" && answered != want:
		c.st.Observed, c.st.PendingValue = answered, ""
		s.unconfirmed(c, want, answered)
	case answered == want:
		c.st.Observed, c.st.PendingValue = want, want
		s.confirmed(c, want)
	default:
		c.st.PendingValue = want
		if d := c.correcting; d != nil {
			d.Action = v1.DriftCorrectionPending
		}
	}
}
