package controllers

import (
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/tracking"
)

// The self-service classification and the handover verdict live in
// internal/tracking (pure, fuzzed cheaply); entryOf hands it what status
// recorded.

// entryOf is what tracking needs of a status entry.
func entryOf(e v1.SelfServiceSubscription) tracking.Entry {
	return tracking.Entry{ID: e.ID, SkuID: e.SkuID, SkuPartNumber: e.SkuPartNumber, Trial: e.Trial,
		AssignedUsers: e.AssignedUsers, OrgSeatsInUse: e.OrgSeatsInUse}
}

// lastRenewal infers when a subscription last renewed.
//
// INFERRED: Graph has no renewal field. A monthly subscription renews at
// nextLifecycleDateTime, so the latest renewal is the time one month before
// it: the latest t, not in the future and after the purchase, with
// t + 1 month = nextLifecycle. Month ends make that ambiguous (Jan 31 and
// Feb 3 both land on Mar 3), so up to 3 days earlier are tried, latest first.
// A nextLifecycle exactly one month after the purchase, or no such t, means
// no renewal yet. Annual terms would be misread;
// correct here when known.
func lastRenewal(sub graph.Subscription, now time.Time) *time.Time {
	if sub.NextLifecycle == nil {
		return nil
	}
	next := *sub.NextLifecycle
	if sub.Created.AddDate(0, 1, 0).Equal(next) {
		return nil // still in the first term
	}
	for back := 0; back <= 3; back++ {
		t := next.AddDate(0, -1, -back)
		if t.AddDate(0, 1, 0).Equal(next) && !t.After(now) && t.After(sub.Created) {
			return &t
		}
	}
	return nil
}

// Default refund windows: a full refund within 24 hours of a self-service
// purchase or renewal (the rule this product was built around) and a
// prorated one within 7 days (Microsoft Learn, "Cancel your Microsoft
// business subscription in the Microsoft 365 admin center": Microsoft
// Customer Agreement billing accounts; 10 days in Chile). The README cites
// the sources; spec.subscriptions overrides both.
const (
	defaultFullRefundWindow     = 24 * time.Hour
	defaultProratedRefundWindow = 7 * 24 * time.Hour
)

// refundPolicy is how long after a purchase or renewal a cancellation is
// refunded in full, and prorated.
type refundPolicy struct{ full, prorated time.Duration }

// refundPolicyOf reads the windows of spec.subscriptions; unset ones take
// the defaults.
func refundPolicyOf(t v1.SubscriptionTracking) refundPolicy {
	rp := refundPolicy{full: defaultFullRefundWindow, prorated: defaultProratedRefundWindow}
	if t.FullRefundWindow != nil {
		rp.full = t.FullRefundWindow.Duration
	}
	if t.ProratedRefundWindow != nil {
		rp.prorated = t.ProratedRefundWindow.Duration
	}
	return rp
}

// refundWindows returns the ends of the full and prorated refund windows,
// counted from the purchase or the latest renewal. It is the one place the
// windows are computed.
func refundWindows(created time.Time, renewed *time.Time, rp refundPolicy) (full, prorated time.Time) {
	start := created
	if renewed != nil {
		start = *renewed
	}
	return start.Add(rp.full), start.Add(rp.prorated)
}

// describeSelfService builds the status entry of one self-service
// subscription, carrying over whether its refund warning was sent for the
// current window. A takeover moves each assigned user onto a free
// organisation seat, so it is possible when free seats cover assigned users.
// When the organisation's account is unknown this run, the seats it had in
// use last time are kept.
func describeSelfService(sub graph.Subscription, seats tracking.Seats, prev *v1.SelfServiceSubscription, rp refundPolicy, now time.Time) v1.SelfServiceSubscription {
	renewed := lastRenewal(sub, now)
	full, prorated := refundWindows(sub.Created, renewed, rp)
	e := v1.SelfServiceSubscription{
		ID: sub.ID, SkuID: sub.SkuID, SkuPartNumber: sub.SkuPartNumber, BuyerID: sub.OwnerID,
		Seats: int32(sub.TotalLicenses), Trial: sub.IsTrial, Status: sub.Status,
		Created: &metav1.Time{Time: sub.Created}, FullRefundUntil: &metav1.Time{Time: full}, ProratedRefundUntil: &metav1.Time{Time: prorated},
		AssignedUsers: int32(seats.Assigned), FreeOrgSeats: int32(seats.Free), OrgSeatsInUse: int32(max(0, seats.OrgInUse)),
		TakeoverPossible: seats.Free >= seats.Assigned,
	}
	if renewed != nil {
		e.LastRenewal = &metav1.Time{Time: *renewed}
	}
	if prev == nil {
		return e
	}
	if seats.OrgInUse < 0 {
		e.OrgSeatsInUse = prev.OrgSeatsInUse
	}
	if prev.FullRefundUntil != nil && prev.FullRefundUntil.Time.Equal(full) {
		e.RefundWarned = prev.RefundWarned
	}
	return e
}

// tracked tells whether a status entry is a self-service subscription still
// in its buyer's hands: serving, and no handover recorded. Only tracked
// entries are followed, counted as active and warned about.
func tracked(e v1.SelfServiceSubscription) bool {
	return e.Handover == "" && tracking.ServingStatus(e.Status)
}

// maxSelfService and maxHandovers bound the status lists; totals and counters
// keep the full numbers. maxEvidence is the CRD's bound of an evidence.
const (
	maxSelfService = 50
	maxHandovers   = 20
	maxEvidence    = 512
)

// boundSelfService orders entries tracked first, newest first, and keeps at
// most maxSelfService.
func boundSelfService(entries []v1.SelfServiceSubscription) []v1.SelfServiceSubscription {
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if tracked(a) != tracked(b) {
			return tracked(a)
		}
		if !a.Created.Equal(b.Created) {
			return b.Created.Before(a.Created)
		}
		return a.ID < b.ID
	})
	if len(entries) > maxSelfService {
		entries = entries[:maxSelfService]
	}
	return entries
}

func recordHandover(st *v1.SubscriptionsStatus, h v1.HandoverRecord) {
	h.Evidence = truncate(h.Evidence, maxEvidence)
	st.Handovers = append([]v1.HandoverRecord{h}, st.Handovers...)
	if len(st.Handovers) > maxHandovers {
		st.Handovers = st.Handovers[:maxHandovers]
	}
}
