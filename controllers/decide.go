package controllers

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// decideList is one list act decides on: products or offer types.
type decideList struct {
	targets []plan.Target
	prev    []v1.ProductStatus
	// adopting: an entry not seen before is adopted (its value recorded as
	// adoptedValue), not reported as new.
	adopting bool
	// withTenant: the entries are adopted with the tenant, at
	// status.adoptedAt, so they carry no adoptedAt of their own.
	withTenant bool
	// max is how many entries status holds.
	max int
	// write sets one entry; nil in Observe mode.
	write writeFunc
	// keepMissing tells whether an entry of prev without a target is missing
	// from the tenant's list (kept for a while) rather than no longer asked
	// for (forgotten at once).
	keepMissing func(id string) bool
}

// decide makes the change of every target of l, then of every entry of
// l.prev missing from the targets. New entries take the room status has
// left, in target order; those beyond it are enforced but not recorded.
func (r *TenantPurchasePolicyReconciler) decide(s *syncState, l decideList) []*change {
	before := make(map[string]v1.ProductStatus, len(l.prev))
	for _, ps := range l.prev {
		before[ps.ProductID] = ps
	}
	room := l.max - len(l.prev)
	listed := make(map[string]bool, len(l.targets))
	out := make([]*change, 0, len(l.targets))
	for _, t := range l.targets {
		listed[t.ID] = true
		old, seen := before[t.ID]
		c := &change{t: t, recorded: seen}
		if !seen && room > 0 && len(t.ID) <= v1.MaxIDLength {
			c.recorded = true
			room--
		}
		s.decideTarget(c, old, seen, l)
		out = append(out, c)
	}
	for _, old := range l.prev {
		if !listed[old.ProductID] && l.keepMissing(old.ProductID) {
			out = append(out, s.decideMissing(old))
		}
	}
	return out
}

// decideTarget decides about one product the tenant listed: what its
// difference from status is (adoption, new, drift, the confirmation of an
// earlier write, a return from missing) and whether Enforce mode writes it.
func (s *syncState) decideTarget(c *change, old v1.ProductStatus, seen bool, l decideList) {
	t, now := c.t, metav1.NewTime(s.now)
	c.st = old
	c.st.ProductID, c.st.Name, c.st.Desired, c.st.Observed, c.st.Source = t.ID, t.Name, t.Desired, t.Observed, t.Source
	c.st.MissingSince, c.st.MissingSyncs = nil, 0
	s.expireHolds(&c.st, old)
	if seen && old.PendingValue != "" {
		s.confirmPending(c, old)
	}
	switch {
	case !c.recorded:
		// Beyond the bounds of status: enforced, not recorded.
	case !seen && l.adopting:
		c.st.AdoptedValue, c.adopted = t.Observed, true
		if !l.withTenant {
			c.st.AdoptedAt = &now
		}
	case !seen:
		c.st.AdoptedAt = &now
		s.policy.Status.Counters.NewProducts++
		s.event(eventNormal, v1.EventNewProductDetected, "Microsoft added %s (%s) as %s; %s", t.ID, t.Name, t.Observed, newProductNote(t))
	case old.MissingSince != nil:
		// Back in the list: neither new nor drift.
	case t.Differs() && t.Observed != old.Observed:
		c.drift = &v1.DriftRecord{ProductID: t.ID, Expected: old.Observed, Found: t.Observed, DetectedAt: now, Action: v1.DriftReported}
		s.policy.Status.Counters.DriftDetected++
		where := "outside this policy"
		if old.PendingValue != "" {
			where = "before a product list showed this policy's write (Microsoft did not apply it, or someone set it back)"
		}
		s.event(eventWarning, v1.EventDriftDetected, "%s (%s) changed from %s to %s %s", t.ID, t.Name, old.Observed, t.Observed, where)
	}
	if !t.Differs() {
		return
	}
	switch {
	case c.st.Rejected != "":
		// Recorded once, not re-sent until it expires; still a person must act.
		s.softStall(v1.ReasonRejected, "Microsoft rejected %s=%s: %s", t.ID, t.Desired, c.st.Rejected)
	case c.st.UnconfirmedWrites >= maxUnconfirmedWrites:
		s.softStall(v1.ReasonWriteNotApplied, "Microsoft accepted %s (%s) = %s %d times in a row but the tenant still shows %s; "+
			"not written again until the desired value changes, the tenant shows it, or %s after the last write",
			t.ID, t.Name, t.Desired, c.st.UnconfirmedWrites, t.Observed, holdExpiry)
	case l.write != nil:
		c.set = l.write
		c.correcting = c.drift
		if c.correcting == nil {
			c.correcting = failedDrift(s.policy.Status.DriftHistory, t.ID)
		}
	}
}

// expireHolds lets a held value be written again: a rejection when the spec
// changed or holdExpiry passed; a run of unconfirmed writes when the desired
// value changed, the tenant shows it, or holdExpiry passed after the last
// write that reached the limit.
func (s *syncState) expireHolds(st *v1.ProductStatus, old v1.ProductStatus) {
	if st.Rejected != "" && (st.RejectedGeneration != s.policy.Generation || st.RejectedAt == nil || !s.now.Before(st.RejectedAt.Add(holdExpiry))) {
		st.Rejected, st.RejectedGeneration, st.RejectedAt = "", 0, nil
	}
	if st.UnconfirmedWrites == 0 {
		return
	}
	expired := st.UnconfirmedWrites >= maxUnconfirmedWrites && (st.LastWriteTime == nil || !s.now.Before(st.LastWriteTime.Add(holdExpiry)))
	if old.Desired != st.Desired || string(st.Desired) == st.Observed || expired {
		st.UnconfirmedWrites = 0
	}
}

// confirmPending settles the write an earlier run sent, from what the list
// shows now. The value: the write stayed (it counts now if Microsoft's
// answer to it did not show the value). Another value: the write did not
// stay, unconfirmed (Microsoft did not apply it, a read is stale, or someone
// set it back before this list); when Microsoft's answer had shown the
// value, the list's value is also a transition, recorded as drift by the
// caller. Unconfirmed writes in a row are what holds a value at
// maxUnconfirmedWrites, so a tenant that never keeps it stops being
// corrected, and counted, at every interval. A list less than
// readSettleTime after the write may be stale: it is not counted against
// the write, so fast retries cannot hold a value Microsoft did apply.
func (s *syncState) confirmPending(c *change, old v1.ProductStatus) {
	pending := old.PendingValue
	c.st.PendingValue = ""
	c.correcting = failedDrift(s.policy.Status.DriftHistory, c.t.ID)
	settled := old.LastWriteTime == nil || s.now.Sub(old.LastWriteTime.Time) >= readSettleTime
	switch {
	case c.t.Observed != pending && settled:
		s.unconfirmed(c, pending, c.t.Observed)
	case c.t.Observed != pending:
		// Maybe stale: the write is sent again, and the next list decides.
	case old.Observed != pending: // not counted when it was written
		c.st.UnconfirmedWrites = 0
		s.confirmed(c, pending)
	default:
		c.st.UnconfirmedWrites = 0
	}
}

// decideMissing keeps the entry of a product the list lacked, with
// missingSince, and removes it once it has been missing for missingSyncs
// syncs and missingFor. Nothing is written and nothing counts as drift.
func (s *syncState) decideMissing(old v1.ProductStatus) *change {
	c := &change{t: plan.Target{ID: old.ProductID, Name: old.Name, Desired: old.Desired, Observed: old.Observed, Source: old.Source},
		st: old, missing: true, recorded: true}
	if c.st.MissingSince == nil {
		now := metav1.NewTime(s.now)
		c.st.MissingSince = &now
		s.event(eventNormal, v1.EventProductMissing, "%s (%s) is missing from the product list; its entry is kept, and nothing written, until it returns", old.ProductID, old.Name)
	}
	c.st.MissingSyncs++
	if c.st.MissingSyncs >= missingSyncs && s.now.Sub(c.st.MissingSince.Time) >= missingFor {
		c.recorded = false
		s.event(eventNormal, v1.EventProductRemoved, "%s (%s) has been missing from the product list since %s (%d syncs): removed from status%s",
			old.ProductID, old.Name, c.st.MissingSince.UTC().Format("2006-01-02T15:04:05Z"), c.st.MissingSyncs, restoreNote(old))
	}
	return c
}

// restoreNote says what removing an entry costs deletionPolicy Restore.
func restoreNote(old v1.ProductStatus) string {
	if old.AdoptedValue == "" {
		return ""
	}
	return "; Restore will not write back its adoption value " + old.AdoptedValue
}

// dropped counts the products listed but not recorded: beyond the bounds of
// status, or with an ID no entry can hold.
func dropped(changes []*change) int32 {
	var n int32
	for _, c := range changes {
		if !c.recorded && !c.missing {
			n++
		}
	}
	return n
}

// hasOfferRule tells whether the spec still has a rule for an offer type.
func (s *syncState) hasOfferRule(offerType string) bool {
	return slices.ContainsFunc(s.policy.Spec.OfferTypes, func(r v1.OfferTypeRule) bool { return string(r.OfferType) == offerType })
}
