package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// Here the run decides what a difference between the plan and the tenant is:
// adoption (first sight), a new product, or drift (a transition away from the
// value last converged or observed); and, in Enforce mode, writes exactly the
// products that differ.

// writeFunc sets one product or offer type: TenantPolicies.SetProduct or
// SetOfferType.
type writeFunc func(ctx context.Context, id, value string) error

// act compares the plan with what status last recorded, records adoption,
// new products and drift, and in Enforce mode writes exactly the products that
// differ (skipping values Microsoft rejected for this generation). Observe
// mode writes nothing. A throttle, an auth failure or a transient error stops
// the writes; status still records everything observed.
//
// Sets status.products, status.offerTypes, status.driftHistory, counters.
func (r *TenantPurchasePolicyReconciler) act(ctx context.Context, s *syncState) error {
	p := s.policy
	// The policy adopts the tenant the first time it gets to record the
	// products, which may be later than its first read (a lost conflict or
	// a throttle stops a run before act).
	adopting := len(p.Status.Products) == 0
	var setProduct, setOffer writeFunc // nil in Observe mode: nothing is written
	if p.Spec.Mode == v1.ModeEnforce {
		setProduct, setOffer = s.policies.SetProduct, s.policies.SetOfferType
	}
	s.acted = true
	if adopting && len(s.plan.Products) > 0 {
		var differ []string
		for _, t := range s.plan.Products {
			if t.Differs() {
				differ = append(differ, t.ID)
			}
		}
		s.event(eventNormal, v1.EventAdopted, "adopted %d products of tenant %s; %d differed from the policy: %s",
			len(s.plan.Products), p.Spec.TenantID, len(differ), truncateList(differ, 10))
	}
	products, err := r.sync(ctx, s, s.plan.Products, p.Status.Products, adopting, setProduct)
	p.Status.Products = products
	if err != nil {
		return err
	}
	// Offer types are read only while a rule names them, so one not seen
	// before is adopted, never reported as new from Microsoft.
	offers, err := r.sync(ctx, s, s.plan.OfferTypes, p.Status.OfferTypes, true, setOffer)
	p.Status.OfferTypes = offers
	return err
}

// sync handles one list (products or offer types): it returns the new status
// entries and stops at the first error that is not about a single product.
func (r *TenantPurchasePolicyReconciler) sync(ctx context.Context, s *syncState, targets []plan.Target, prev []v1.ProductStatus, adopting bool, write writeFunc) ([]v1.ProductStatus, error) {
	p := s.policy
	now := metav1.NewTime(s.now)
	before := make(map[string]v1.ProductStatus, len(prev))
	for _, ps := range prev {
		before[ps.ProductID] = ps
	}
	out := make([]v1.ProductStatus, 0, len(targets))
	var stop error
	for _, t := range targets {
		old, seen := before[t.ID]
		st := v1.ProductStatus{
			ProductID: t.ID, Name: t.Name, Desired: t.Desired, Observed: t.Observed, Source: t.Source,
			AdoptedValue: old.AdoptedValue, AdoptedAt: old.AdoptedAt, Corrections: old.Corrections,
			LastCorrectionTime: old.LastCorrectionTime, Rejected: old.Rejected, RejectedGeneration: old.RejectedGeneration,
		}
		if st.RejectedGeneration != p.Generation {
			st.Rejected, st.RejectedGeneration = "", 0
		}
		var drift *v1.DriftRecord
		switch {
		case !seen && adopting:
			st.AdoptedValue, st.AdoptedAt = t.Observed, &now
		case !seen:
			st.AdoptedAt = &now
			p.Status.Counters.NewProducts++
			s.event(eventNormal, v1.EventNewProductDetected, "Microsoft added %s (%s) as %s; %s", t.ID, t.Name, t.Observed, newProductNote(t))
		case t.Differs() && t.Observed != old.Observed:
			drift = &v1.DriftRecord{ProductID: t.ID, Expected: old.Observed, Found: t.Observed, DetectedAt: now, Action: v1.DriftReported}
			p.Status.Counters.DriftDetected++
			s.event(eventWarning, v1.EventDriftDetected, "%s (%s) changed from %s to %s outside this policy", t.ID, t.Name, old.Observed, t.Observed)
		}

		if t.Differs() && st.Rejected != "" {
			// Recorded once, not re-sent until the spec changes; still a person must act.
			s.softStall(v1.ReasonRejected, "Microsoft rejected %s=%s: %s", t.ID, t.Desired, st.Rejected)
		}
		if stop == nil && write != nil && t.Differs() && st.Rejected == "" {
			correcting := drift
			if correcting == nil {
				correcting = failedDrift(p.Status.DriftHistory, t.ID)
			}
			stop = r.write(ctx, s, write, t, &st, correcting)
		}
		if drift != nil {
			if write != nil && drift.Action == v1.DriftReported {
				// Enforce mode could not write it in this run (an earlier write was
				// throttled): the next successful write completes the correction.
				drift.Action = v1.DriftCorrectionFailed
			}
			recordDrift(&p.Status, *drift)
		}
		out = append(out, st)
	}
	return out, stop
}

// write sets one product and records the outcome in its status entry and
// drift record. It returns an error only when the remaining writes must stop.
func (r *TenantPurchasePolicyReconciler) write(ctx context.Context, s *syncState, write writeFunc, t plan.Target, st *v1.ProductStatus, drift *v1.DriftRecord) error {
	p := s.policy
	err := write(ctx, t.ID, string(t.Desired))
	r.Metrics.write(p, err)
	if err == nil {
		now := metav1.NewTime(s.now)
		st.Observed = string(t.Desired)
		st.Corrections++
		st.LastCorrectionTime = &now
		if drift != nil {
			drift.Action = v1.DriftCorrected
			p.Status.Counters.DriftCorrected++
			s.event(eventNormal, v1.EventDriftCorrected, "set %s (%s) back from %s to %s", t.ID, t.Name, t.Observed, t.Desired)
		}
		return nil
	}
	if drift != nil {
		drift.Action = v1.DriftCorrectionFailed
	}
	s.event(eventWarning, v1.EventWriteFailed, "setting %s (%s) to %s failed: %v", t.ID, t.Name, t.Desired, err)
	switch m365.KindOf(err) {
	case m365.NotFound, m365.BadRequest:
		// Permanent for this value: record once, do not resend until the spec changes.
		st.Rejected, st.RejectedGeneration = truncate(err.Error(), 1024), p.Generation
		s.softStall(v1.ReasonRejected, "Microsoft rejected %s=%s: %v", t.ID, t.Desired, err)
		return nil
	}
	return classify(err)
}

func newProductNote(t plan.Target) string {
	switch {
	case !t.Managed():
		return "left alone (Unmanaged)"
	case t.Differs():
		return fmt.Sprintf("default sets it to %s", t.Desired)
	}
	return "already as default wants"
}

// failedDrift returns the newest drift record of a product when its
// correction failed (a throttle, a transient error), so the write that
// finally succeeds is counted as correcting that drift.
func failedDrift(history []v1.DriftRecord, productID string) *v1.DriftRecord {
	for i := range history {
		if history[i].ProductID == productID {
			if history[i].Action == v1.DriftCorrectionFailed {
				return &history[i]
			}
			return nil
		}
	}
	return nil
}

// maxDriftHistory bounds status.driftHistory; counters keep the totals.
const maxDriftHistory = 20

// recordDrift puts d first in the history and keeps the newest entries.
func recordDrift(st *v1.TenantPurchasePolicyStatus, d v1.DriftRecord) {
	st.DriftHistory = append([]v1.DriftRecord{d}, st.DriftHistory...)
	if len(st.DriftHistory) > maxDriftHistory {
		st.DriftHistory = st.DriftHistory[:maxDriftHistory]
	}
}
