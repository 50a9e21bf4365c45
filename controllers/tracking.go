package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// trackingOutcome is what subscription tracking reports to the conditions.
type trackingOutcome struct {
	disabled bool
	err      error
	reason   string
}

// trackSubscriptions reads directory subscriptions and subscribed SKUs
// through Graph, records self-service subscriptions with their refund
// windows and takeover capacity, and detects, from what status already
// holds, the ones that left the buyer's hands since the last run. Graph
// failing never stops policy enforcement: it only degrades tracking.
//
// Sets status.subscriptions, counters and SubscriptionTrackingDegraded.
func (r *TenantPurchasePolicyReconciler) trackSubscriptions(ctx context.Context, s *syncState) error {
	p := s.policy
	if t := p.Spec.Subscriptions.Track; t != nil && !*t {
		s.tracking = &trackingOutcome{disabled: true}
		return nil
	}
	subs, _, err := s.directory.ListSubscriptions(ctx)
	var skus []graph.SubscribedSku
	if err == nil {
		skus, _, err = s.directory.ListSubscribedSkus(ctx)
	}
	if err != nil {
		s.tracking = degraded(err)
		return nil
	}
	selfService, orgAccount := classifySelfService(subs, skus)
	free, assigned := freeOrgSeats(skus, orgAccount), assignedSeats(skus)

	prev := p.Status.Subscriptions
	if prev == nil {
		prev = &v1.SubscriptionsStatus{}
	}
	before := make(map[string]v1.SelfServiceSubscription, len(prev.SelfService))
	for _, e := range prev.SelfService {
		before[e.ID] = e
	}
	current := make(map[string]*graph.Subscription, len(subs))
	for i := range subs {
		current[subs[i].ID] = &subs[i]
	}

	next := &v1.SubscriptionsStatus{Handovers: prev.Handovers, Total: int32(len(selfService))}
	now := metav1.NewTime(s.now)
	next.LastSyncTime = &now
	seen := map[string]bool{}
	for _, sub := range selfService {
		seen[sub.ID] = true
		old, known := before[sub.ID]
		var oldPtr *v1.SelfServiceSubscription
		if known {
			oldPtr = &old
		}
		e := describeSelfService(sub, free, assigned[sub.ID], oldPtr, s.now)
		if !known && activeStatus(sub.Status) && !overflowed(prev, sub) {
			s.purchases++
			s.event(eventNormal, v1.EventSelfServicePurchase, "user %s bought %d %s seat(s) on their own (%s); full refund until %s",
				sub.OwnerID, sub.TotalLicenses, sub.SkuPartNumber, trialOrPaid(sub.IsTrial), e.FullRefundUntil.UTC().Format("2006-01-02 15:04 MST"))
		}
		r.warnRefund(s, &e)
		if known && activeStatus(old.Status) && !activeStatus(sub.Status) {
			if err := r.recordTransition(ctx, s, next, old, current[sub.ID]); err != nil {
				e = old // keep the previous state so the next run decides again
			}
		}
		next.SelfService = append(next.SelfService, e)
	}
	// Self-service subscriptions that vanished from Graph.
	for _, old := range prev.SelfService {
		if seen[old.ID] || !activeStatus(old.Status) {
			continue
		}
		if cur := current[old.ID]; cur != nil && activeStatus(cur.Status) {
			// Still serving its users, only not classified this time (subscribed
			// SKUs lagging): keep it, decide again next run.
			next.SelfService = append(next.SelfService, old)
			continue
		}
		if err := r.recordTransition(ctx, s, next, old, current[old.ID]); err != nil {
			next.SelfService = append(next.SelfService, old)
		}
	}
	next.SelfService = boundSelfService(next.SelfService)
	p.Status.Subscriptions = next
	if s.tracking == nil {
		s.tracking = &trackingOutcome{}
	}
	return nil
}

// recordTransition decides and records how an active self-service
// subscription left the buyer's hands, reading only the buyer by id. If the
// buyer cannot be read for a reason other than not existing, nothing is
// recorded (tracking is degraded) and the next run decides.
func (r *TenantPurchasePolicyReconciler) recordTransition(ctx context.Context, s *syncState, st *v1.SubscriptionsStatus, old v1.SelfServiceSubscription, now *graph.Subscription) error {
	p := s.policy
	var buyer *graph.User
	if old.BuyerID != "" {
		u, err := s.directory.GetUser(ctx, old.BuyerID)
		switch {
		case err == nil:
			buyer = &u
		case m365.KindOf(err) != m365.NotFound:
			s.tracking = degraded(err)
			return err
		}
	}
	verdict, evidence := handoverVerdict(old, now, buyer)
	recordHandover(st, v1.HandoverRecord{SubscriptionID: old.ID, SkuPartNumber: old.SkuPartNumber, BuyerID: old.BuyerID,
		Verdict: verdict, DetectedAt: metav1.NewTime(s.now), Evidence: evidence})
	c := &p.Status.Counters
	switch verdict {
	case v1.VerdictTakenOver:
		c.Takeovers++
		s.event(eventNormal, v1.EventTakeoverDetected, "self-service subscription %s (%s) was taken over: %s", old.ID, old.SkuPartNumber, evidence)
	case v1.VerdictExpired:
		c.Expiries++
		s.event(eventNormal, v1.EventTrialExpired, "self-service trial %s (%s) ended: %s", old.ID, old.SkuPartNumber, evidence)
	default:
		c.Cancellations++
		s.event(eventNormal, v1.EventCancellationDetected, "self-service subscription %s (%s) was cancelled: %s", old.ID, old.SkuPartNumber, evidence)
	}
	return nil
}

// warnRefund emits RefundWindowClosing once per window, refundWarning before
// the full-refund window of an active paid subscription closes, and asks for
// a run at that moment.
func (r *TenantPurchasePolicyReconciler) warnRefund(s *syncState, e *v1.SelfServiceSubscription) {
	if !refundable(e) || e.RefundWarned {
		return
	}
	lead := s.policy.Spec.Subscriptions.RefundWarning
	warnAt := e.FullRefundUntil.Time
	if lead != nil {
		warnAt = warnAt.Add(-lead.Duration)
	}
	switch {
	case s.now.Before(warnAt):
		s.wakeAt = append(s.wakeAt, warnAt)
	case s.now.Before(e.FullRefundUntil.Time):
		e.RefundWarned = true
		s.event(eventWarning, v1.EventRefundWindowClosing, "full refund of self-service subscription %s (%s, bought by %s) ends at %s; prorated refund until %s",
			e.ID, e.SkuPartNumber, e.BuyerID, e.FullRefundUntil.UTC().Format("2006-01-02 15:04 MST"), e.ProratedRefundUntil.UTC().Format("2006-01-02 15:04 MST"))
	}
}

// refundable says whether a self-service subscription can be refunded in
// full until e.FullRefundUntil: active, paid, with a deadline.
func refundable(e *v1.SelfServiceSubscription) bool {
	return !e.Trial && activeStatus(e.Status) && e.FullRefundUntil != nil
}

// degraded maps a Graph error to the SubscriptionTrackingDegraded reason.
func degraded(err error) *trackingOutcome {
	reason := v1.ReasonGraphUnavailable
	switch m365.KindOf(err) {
	case m365.Forbidden, m365.Unauthorized:
		reason = v1.ReasonGraphForbidden
	}
	return &trackingOutcome{err: fmt.Errorf("subscription tracking: %w", err), reason: reason}
}

func trialOrPaid(trial bool) string {
	if trial {
		return "trial"
	}
	return "paid"
}

// overflowed tells whether sub is missing from status only because the list
// was full: it was bought before the last sync, so it was announced then.
func overflowed(prev *v1.SubscriptionsStatus, sub graph.Subscription) bool {
	return len(prev.SelfService) >= maxSelfService && prev.LastSyncTime != nil && sub.Created.Before(prev.LastSyncTime.Time)
}
