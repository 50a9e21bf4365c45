package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// TenantIDField is the field selector (and cache index) of spec.tenantID.
const TenantIDField = "spec.tenantID"

var errEmptyProductList = errors.New("the licensing API listed no products for the tenant")

// observeTenant reads the tenant: one product list, and one offer-type list
// when the policy has offer-type rules. The first success marks the policy as
// authenticated, which lets it own the tenant.
//
// Sets status.lastSyncTime and status.authenticatedAt.
func (r *TenantPurchasePolicyReconciler) observeTenant(ctx context.Context, s *syncState) error {
	p := s.policy
	products, err := r.Policies.ListProducts(ctx, p.Spec.TenantID, s.cred)
	if err != nil {
		return classify(err)
	}
	if len(products) == 0 {
		// Every tenant has products; an empty answer must not re-adopt or
		// forget what status holds. Retry with backoff.
		return errEmptyProductList
	}
	s.products = products
	if len(p.Spec.OfferTypes) > 0 {
		if s.offerTypes, err = r.Policies.ListOfferTypes(ctx, p.Spec.TenantID, s.cred); err != nil {
			return classify(err)
		}
	}
	now := metav1.NewTime(s.now)
	if p.Status.AuthenticatedAt == nil {
		p.Status.AuthenticatedAt = &now
	}
	return nil
}

// computePlan decides the desired value of every product (see computeDesired)
// and schedules a run at the next rule expiry.
func (r *TenantPurchasePolicyReconciler) computePlan(_ context.Context, s *syncState) error {
	pl := computeDesired(&s.policy.Spec, s.products, s.offerTypes, s.now)
	s.plan = &pl
	if pl.nextExpiry != nil {
		s.wakeAt = append(s.wakeAt, *pl.nextExpiry)
	}
	if len(pl.unknown) > 0 {
		s.softErr = stalled(v1.ReasonUnknownProduct, "the tenant has no product or offer type %s; every other product is enforced", strings.Join(pl.unknown, ", "))
	}
	return nil
}

// resolveOwnership lets one Enforce policy own a tenant: the oldest (ties by
// UID) among the Enforce policies with this tenantID that have authenticated,
// found with an uncached List on the spec.tenantID field selector so
// controllers of other shards see each other. Observe policies never conflict.
//
// Sets the Conflict condition (through syncState.conflictOwner).
func (r *TenantPurchasePolicyReconciler) resolveOwnership(ctx context.Context, s *syncState) error {
	s.ownerChecked = true
	p := s.policy
	if p.Spec.Mode == v1.ModeObserve {
		return nil
	}
	var claimants v1.TenantPurchasePolicyList
	if err := r.APIReader.List(ctx, &claimants, ctrl.MatchingFields{TenantIDField: p.Spec.TenantID}); err != nil {
		return fmt.Errorf("listing policies of tenant %s: %w", p.Spec.TenantID, err)
	}
	owner := electOwner(claimants.Items, p)
	if owner == nil || owner.UID == p.UID {
		return firstClaim(claimants.Items, s.base)
	}
	s.conflictOwner = owner.Namespace + "/" + owner.Name
	return stalled(v1.ReasonConflictLost, "tenant %s is enforced by the older TenantPurchasePolicy %s; this policy writes nothing until that one is deleted or set to Observe",
		p.Spec.TenantID, s.conflictOwner)
}

// claimWait is how long a new policy lets an older one authenticate first.
const claimWait = 2 * time.Second

// firstClaim holds back, for one short wait, a policy authenticating for the
// first time while an older Enforce policy of the tenant has not authenticated
// yet: both may be in their first run, each unable to see the other, and only
// the older may write. If the older one still has not authenticated by then
// (bad credentials), it cannot squat the tenant: this policy has
// authenticated and claims it.
func firstClaim(policies []v1.TenantPurchasePolicy, self *v1.TenantPurchasePolicy) error {
	if self.Status.AuthenticatedAt != nil {
		return nil
	}
	for i := range policies {
		c := &policies[i]
		older := c.CreationTimestamp.Before(&self.CreationTimestamp) || c.CreationTimestamp.Equal(&self.CreationTimestamp) && c.UID < self.UID
		if c.UID != self.UID && older && c.Spec.Mode != v1.ModeObserve && c.DeletionTimestamp.IsZero() && c.Status.AuthenticatedAt == nil {
			return &waitError{after: claimWait, reason: v1.ReasonProgressing,
				err: fmt.Errorf("waiting for the older TenantPurchasePolicy %s/%s to authenticate before claiming tenant %s", c.Namespace, c.Name, self.Spec.TenantID)}
		}
	}
	return nil
}

// electOwner returns the owner of a tenant among policies, counting self as
// authenticated (it just read the tenant).
func electOwner(policies []v1.TenantPurchasePolicy, self *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	var candidates []*v1.TenantPurchasePolicy
	for i := range policies {
		c := &policies[i]
		if c.UID == self.UID {
			c = self
		}
		if c.Spec.Mode == v1.ModeObserve || !c.DeletionTimestamp.IsZero() || c.Status.AuthenticatedAt == nil {
			continue
		}
		candidates = append(candidates, c)
	}
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.UID < b.UID
	})
	if len(candidates) == 0 {
		return nil
	}
	return candidates[0]
}

// writeFunc sets one product or offer type.
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
	tenant := p.Spec.TenantID
	// The policy adopts the tenant the first time it gets to record the
	// products, which may be later than its first read (a lost conflict or
	// a throttle stops a run before act).
	adopting := len(p.Status.Products) == 0
	var setProduct, setOffer writeFunc
	if p.Spec.Mode == v1.ModeEnforce {
		setProduct = func(ctx context.Context, id, v string) error {
			return r.Policies.SetProduct(ctx, tenant, s.cred, id, v)
		}
		setOffer = func(ctx context.Context, id, v string) error {
			return r.Policies.SetOfferType(ctx, tenant, s.cred, id, v)
		}
	}
	s.acted = true
	if adopting && len(s.plan.products) > 0 {
		var differ []string
		for _, t := range s.plan.products {
			if t.differs() {
				differ = append(differ, t.ID)
			}
		}
		s.event(eventNormal, v1.EventAdopted, "adopted %d products of tenant %s; %d differed from the policy: %s",
			len(s.plan.products), tenant, len(differ), truncateList(differ, 10))
	}
	products, err := r.sync(ctx, s, s.plan.products, p.Status.Products, adopting, setProduct)
	p.Status.Products = products
	if err != nil {
		return err
	}
	// Offer types are read only while a rule names them, so one not seen
	// before is adopted, never reported as new from Microsoft.
	offers, err := r.sync(ctx, s, s.plan.offerTypes, p.Status.OfferTypes, true, setOffer)
	p.Status.OfferTypes = offers
	return err
}

// sync handles one list (products or offer types): it returns the new status
// entries and stops at the first error that is not about a single product.
func (r *TenantPurchasePolicyReconciler) sync(ctx context.Context, s *syncState, targets []target, prev []v1.ProductStatus, adopting bool, write writeFunc) ([]v1.ProductStatus, error) {
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
		case t.differs() && t.Observed != old.Observed:
			drift = &v1.DriftRecord{ProductID: t.ID, Expected: old.Observed, Found: t.Observed, DetectedAt: now, Action: v1.DriftReported}
			p.Status.Counters.DriftDetected++
			s.event(eventWarning, v1.EventDriftDetected, "%s (%s) changed from %s to %s outside this policy", t.ID, t.Name, old.Observed, t.Observed)
		}

		if t.differs() && st.Rejected != "" && s.softErr == nil {
			// Recorded once, not re-sent until the spec changes; still a person must act.
			s.softErr = stalled(v1.ReasonRejected, "Microsoft rejected %s=%s: %s", t.ID, t.Desired, st.Rejected)
		}
		if stop == nil && write != nil && t.differs() && st.Rejected == "" {
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
func (r *TenantPurchasePolicyReconciler) write(ctx context.Context, s *syncState, write writeFunc, t target, st *v1.ProductStatus, drift *v1.DriftRecord) error {
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
		if s.softErr == nil {
			s.softErr = stalled(v1.ReasonRejected, "Microsoft rejected %s=%s: %v", t.ID, t.Desired, err)
		}
		return nil
	}
	return classify(err)
}

func newProductNote(t target) string {
	switch {
	case !t.managed():
		return "left alone (Unmanaged)"
	case t.differs():
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

func truncateList(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
