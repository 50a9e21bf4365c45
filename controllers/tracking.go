package controllers

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/tracking"
)

// trackingOutcome is what subscription tracking reports to the conditions.
type trackingOutcome struct {
	disabled bool
	err      error
	reason   string
}

// trackSubscriptions reads directory subscriptions and subscribed SKUs
// through Graph, records self-service subscriptions with their refund
// windows and takeover capacity, and follows the ones status holds as still
// in their buyer's hands, recording a takeover, cancellation or expiry only
// on positive evidence (tracking.HandoverVerdict). Graph answers can be short or
// empty, so a tracked subscription missing from the list is read by id
// before anything is concluded. Graph failing never stops policy
// enforcement: it only degrades tracking.
//
// Sets status.subscriptions, counters and SubscriptionTrackingDegraded.
func (r *TenantPurchasePolicyReconciler) trackSubscriptions(ctx context.Context, s *syncState) error {
	p := s.policy
	if t := p.Spec.Subscriptions.Track; t != nil && !*t {
		s.tracking = &trackingOutcome{disabled: true}
		return nil
	}
	dir, info, err := readDirectory(ctx, s.directory)
	if err != nil {
		s.tracking = degraded(err)
		return nil
	}
	s.subscriptionList = &info
	t := newTracker(s, dir)
	seen := map[string]bool{}
	for _, sub := range dir.SelfService {
		seen[sub.ID] = true
		t.add(t.listed(ctx, sub), true)
	}
	for _, old := range t.prev.SelfService {
		if !seen[old.ID] {
			t.add(t.unlisted(ctx, old))
		}
	}
	t.next.SelfService = boundSelfService(t.next.SelfService)
	p.Status.Subscriptions = t.next
	if s.tracking == nil {
		s.tracking = &trackingOutcome{}
	}
	return nil
}

// readDirectory reads this run's subscriptions and subscribed SKUs, both
// at once (two independent Graph reads: one round trip instead of two), and
// what both answers held beyond the items returned.
func readDirectory(ctx context.Context, d TenantDirectory) (tracking.View, m365.ListInfo, error) {
	var (
		subs       []graph.Subscription
		skus       []graph.SubscribedSku
		info, more m365.ListInfo
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { subs, info, err = d.ListSubscriptions(gctx); return err })
	g.Go(func() (err error) { skus, more, err = d.ListSubscribedSkus(gctx); return err })
	if err := g.Wait(); err != nil {
		return tracking.View{}, m365.ListInfo{}, err
	}
	info.Add(more)
	return tracking.NewView(subs, skus), info, nil
}

// tracker carries one run of subscription tracking: what Graph answered,
// the status of the last run and the one being built.
type tracker struct {
	s      *syncState
	dir    tracking.View
	prev   *v1.SubscriptionsStatus
	next   *v1.SubscriptionsStatus
	before map[string]v1.SelfServiceSubscription
	refund refundPolicy
}

func newTracker(s *syncState, dir tracking.View) *tracker {
	prev := s.policy.Status.Subscriptions
	if prev == nil {
		prev = &v1.SubscriptionsStatus{}
	}
	now := metav1.NewTime(s.now)
	t := &tracker{s: s, dir: dir, prev: prev, refund: refundPolicyOf(s.policy.Spec.Subscriptions),
		next:   &v1.SubscriptionsStatus{Handovers: prev.Handovers, LastSyncTime: &now},
		before: make(map[string]v1.SelfServiceSubscription, len(prev.SelfService))}
	for _, e := range prev.SelfService {
		t.before[e.ID] = e
	}
	return t
}

// add puts an entry into the new status; counted entries make up the total.
func (t *tracker) add(e v1.SelfServiceSubscription, counted bool) {
	t.next.SelfService = append(t.next.SelfService, e)
	if counted {
		t.next.Total++
	}
}

// listed describes a self-service subscription of this run's list:
// announces it when new, keeps its recorded handover, and follows it when it
// was still in its buyer's hands.
func (t *tracker) listed(ctx context.Context, sub graph.Subscription) v1.SelfServiceSubscription {
	old, known := t.before[sub.ID]
	var prev *v1.SelfServiceSubscription
	if known {
		prev = &old
	}
	e := describeSelfService(sub, t.dir.Seats(sub), prev, t.refund, t.s.now)
	switch {
	case !known && activeStatus(sub.Status) && !overflowed(t.prev, sub):
		t.s.purchases++
		t.s.announce(eventNormal, v1.EventSelfServicePurchase, sub.ID, "user %s bought %d %s seat(s) on their own (%s); full refund until %s",
			sub.OwnerID, sub.TotalLicenses, sub.SkuPartNumber, trialOrPaid(sub.IsTrial), e.FullRefundUntil.UTC().Format("2006-01-02 15:04 MST"))
	case known && old.Handover != "":
		e.Handover = old.Handover
	case known && tracked(old):
		e = t.follow(ctx, old, e, t.dir.Facts(entryOf(old), sub.Status, false))
	}
	t.warnRefund(&e)
	return e
}

// unlisted decides about an entry of the last run that this run's list does
// not show as self-service. Untracked entries are kept as they are (never
// read again: a handover is recorded once, and a later complete list must
// not announce them as new). A tracked one is located, from the list (it is
// listed but not classified, e.g. subscribedSkus lagging) or by id, and
// followed; if it cannot be located it is kept as it was, and so is every
// one after a failed Graph read of this run (a throttled Graph is not asked
// again). counted tells whether it is still a self-service subscription
// found in the tenant.
func (t *tracker) unlisted(ctx context.Context, old v1.SelfServiceSubscription) (e v1.SelfServiceSubscription, counted bool) {
	switch {
	case !tracked(old):
		return old, false
	case t.s.tracking != nil && t.s.tracking.err != nil:
		return old, true
	}
	status, gone, err := t.locate(ctx, old.ID)
	if err != nil {
		t.s.tracking = degraded(err)
		return old, true
	}
	e = old
	e.Status = status
	if gone {
		e.Status = tracking.StatusDeleted
	}
	e = t.follow(ctx, old, e, t.dir.Facts(entryOf(old), status, gone))
	return e, !gone
}

// locate returns the status of a subscription missing from the
// self-service list: from the list if it is there, else from a read by id,
// where 404 (gone) is the only evidence that it no longer exists.
func (t *tracker) locate(ctx context.Context, id string) (status string, gone bool, err error) {
	if sub, ok := t.dir.Listed[id]; ok {
		return sub.Status, false, nil
	}
	sub, err := t.s.directory.GetSubscription(ctx, id)
	switch {
	case err == nil:
		return sub.Status, false, nil
	case m365.KindOf(err) == m365.NotFound:
		return "", true, nil
	}
	return "", false, err
}

// follow reads the buyer, by id, when the facts say a tracked subscription
// may have left their hands, and records the verdict the evidence supports
// (tracking.HandoverVerdict). It returns e (this run's entry) with the handover set
// when one was recorded, or old when the buyer could not be read, so the
// next run decides from the same start.
func (t *tracker) follow(ctx context.Context, old, e v1.SelfServiceSubscription, f tracking.Facts) v1.SelfServiceSubscription {
	if !tracking.NeedsBuyer(entryOf(old), f) {
		return e
	}
	if old.BuyerID != "" {
		u, err := t.s.directory.GetUser(ctx, old.BuyerID)
		switch {
		case err == nil:
			f.Buyer = &u
		case m365.KindOf(err) != m365.NotFound:
			t.s.tracking = degraded(err)
			return old
		}
	}
	verdict, evidence, decided := tracking.HandoverVerdict(entryOf(old), f)
	if decided {
		t.record(old, v1.HandoverVerdict(verdict), evidence)
		e.Handover = v1.HandoverVerdict(verdict)
	}
	return e
}

// record adds a handover record, counts it and queues its Event.
func (t *tracker) record(old v1.SelfServiceSubscription, verdict v1.HandoverVerdict, evidence string) {
	recordHandover(t.next, v1.HandoverRecord{SubscriptionID: old.ID, SkuPartNumber: old.SkuPartNumber, BuyerID: old.BuyerID,
		Verdict: verdict, DetectedAt: metav1.NewTime(t.s.now), Evidence: evidence})
	c := &t.s.policy.Status.Counters
	switch verdict {
	case v1.VerdictTakenOver:
		c.Takeovers++
		t.s.announce(eventNormal, v1.EventTakeoverDetected, old.ID, "self-service subscription %s (%s) was taken over: %s", old.ID, old.SkuPartNumber, evidence)
	case v1.VerdictExpired:
		c.Expiries++
		t.s.announce(eventNormal, v1.EventTrialExpired, old.ID, "self-service trial %s (%s) ended: %s", old.ID, old.SkuPartNumber, evidence)
	default:
		c.Cancellations++
		t.s.announce(eventNormal, v1.EventCancellationDetected, old.ID, "self-service subscription %s (%s) was cancelled: %s", old.ID, old.SkuPartNumber, evidence)
	}
}

// warnRefund emits RefundWindowClosing once per window, refundWarning before
// the full-refund window of an active paid subscription still in its buyer's
// hands closes, and asks for a run at that moment.
func (t *tracker) warnRefund(e *v1.SelfServiceSubscription) {
	s := t.s
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
		s.announce(eventWarning, v1.EventRefundWindowClosing, e.ID+"/"+e.FullRefundUntil.UTC().Format(time.RFC3339), "full refund of self-service subscription %s (%s, bought by %s) ends at %s; prorated refund until %s",
			e.ID, e.SkuPartNumber, e.BuyerID, e.FullRefundUntil.UTC().Format("2006-01-02 15:04 MST"), e.ProratedRefundUntil.UTC().Format("2006-01-02 15:04 MST"))
	}
}

// refundable says whether a self-service subscription can be refunded in
// full until e.FullRefundUntil: active, paid, still in its buyer's hands,
// with a deadline.
func refundable(e *v1.SelfServiceSubscription) bool {
	return !e.Trial && e.Handover == "" && activeStatus(e.Status) && e.FullRefundUntil != nil
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
