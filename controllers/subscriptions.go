package controllers

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// ownerTypeUser is the ownerType of subscriptions a user (not the organisation) owns.
const ownerTypeUser = "User"

// classifySelfService returns the subscriptions bought by users on their
// own, and the billing accounts of the organisation.
//
// INFERRED (docs/microsoft-api.md, "List company subscriptions"): ownerType "User" alone does not prove a
// self-service purchase, since an admin-bought organisation subscription can
// carry it too. A self-service buyer pays from a billing account of their
// own, so a subscription counts as self-service when its ownerType is "User"
// AND the billing account holding it (subscribedSkus[].accountId through
// subscriptionIds) is not one of the organisation's. The organisation's
// accounts are those holding a subscription owned by something other than a
// user, or failing that the one holding the most subscriptions (ties: most
// seats). This is the one place to correct if Microsoft documents a better
// signal.
func classifySelfService(subs []graph.Subscription, skus []graph.SubscribedSku) (selfService []graph.Subscription, orgAccounts map[string]bool) {
	accountOf := make(map[string]string)
	for _, sku := range skus {
		for _, id := range sku.SubscriptionIDs {
			accountOf[id] = sku.AccountID
		}
	}
	orgAccounts = organisationAccounts(subs, accountOf)
	for _, sub := range subs {
		account, known := accountOf[sub.ID]
		if ownedByUser(sub) && known && !orgAccounts[account] {
			selfService = append(selfService, sub)
		}
	}
	return selfService, orgAccounts
}

func ownedByUser(sub graph.Subscription) bool { return strings.EqualFold(sub.OwnerType, ownerTypeUser) }

// organisationAccounts names the organisation's billing accounts: every
// account holding a subscription not owned by a user, or, when there is
// none, the account holding the most subscriptions (then seats, then the
// lowest ID).
func organisationAccounts(subs []graph.Subscription, accountOf map[string]string) map[string]bool {
	type tally struct{ subs, seats int }
	org := map[string]bool{}
	counts := map[string]*tally{}
	for _, sub := range subs {
		account, ok := accountOf[sub.ID]
		if !ok {
			continue
		}
		if !ownedByUser(sub) {
			org[account] = true
		}
		if counts[account] == nil {
			counts[account] = &tally{}
		}
		counts[account].subs++
		counts[account].seats += sub.TotalLicenses
	}
	if len(org) > 0 || len(counts) == 0 {
		return org
	}
	best, bestTally, found := "", tally{}, false
	for account, t := range counts {
		if !found || t.subs > bestTally.subs || (t.subs == bestTally.subs && (t.seats > bestTally.seats || t.seats == bestTally.seats && account < best)) {
			best, bestTally, found = account, *t, true
		}
	}
	org[best] = true
	return org
}

// skuKey normalises a SKU ID for lookups: Graph does not promise one letter
// case across subscriptions, subscribed SKUs and users.
func skuKey(id string) string { return strings.ToLower(id) }

// directoryView indexes one run's Graph answers for tracking.
type directoryView struct {
	// selfService are the subscriptions classifySelfService recognised.
	selfService []graph.Subscription
	// listed are all subscriptions of the list, by ID.
	listed map[string]graph.Subscription
	// inUse is, per subscription ID, the consumed units of the subscribed-SKU
	// entry holding it. A self-service buyer pays from a billing account of
	// their own, so that entry is the subscription's alone: its consumed
	// units are the users a takeover must move.
	inUse map[string]int
	// free and orgInUse count, per SKU (skuKey), the organisation's unused
	// seats (enabled + warning units minus consumed ones) and its seats in
	// use. Self-service accounts are not counted.
	free, orgInUse map[string]int
	// orgKnown: the organisation's billing account was recognised.
	orgKnown bool
}

func newDirectoryView(subs []graph.Subscription, skus []graph.SubscribedSku) directoryView {
	selfService, org := classifySelfService(subs, skus)
	d := directoryView{selfService: selfService, listed: make(map[string]graph.Subscription, len(subs)),
		inUse: map[string]int{}, free: map[string]int{}, orgInUse: map[string]int{}, orgKnown: len(org) > 0}
	for _, sub := range subs {
		d.listed[sub.ID] = sub
	}
	for _, sku := range skus {
		for _, id := range sku.SubscriptionIDs {
			d.inUse[id] = sku.Consumed
		}
		if org[sku.AccountID] {
			k := skuKey(sku.SkuID)
			d.free[k] += max(0, sku.Enabled+sku.Warning-sku.Consumed)
			d.orgInUse[k] += sku.Consumed
		}
	}
	return d
}

// seatCounts are the seat numbers of one self-service subscription's status
// entry; orgInUse is -1 when the organisation's account is not known.
type seatCounts struct{ assigned, free, orgInUse int }

func (d directoryView) seats(sub graph.Subscription) seatCounts {
	c := seatCounts{assigned: d.inUse[sub.ID], free: d.free[skuKey(sub.SkuID)], orgInUse: -1}
	if d.orgKnown {
		c.orgInUse = d.orgInUse[skuKey(sub.SkuID)]
	}
	return c
}

// facts gathers what this run's answers show about a self-service
// subscription whose current status is status (gone: 404 by id).
func (d directoryView) facts(prev v1.SelfServiceSubscription, status string, gone bool) handoverFacts {
	f := handoverFacts{status: status, gone: gone, seatsInUse: -1, orgSeatsInUse: -1}
	if n, ok := d.inUse[prev.ID]; ok {
		f.seatsInUse = n
	}
	if d.orgKnown {
		f.orgSeatsInUse = d.orgInUse[skuKey(prev.SkuID)]
	}
	return f
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
func describeSelfService(sub graph.Subscription, seats seatCounts, prev *v1.SelfServiceSubscription, rp refundPolicy, now time.Time) v1.SelfServiceSubscription {
	renewed := lastRenewal(sub, now)
	full, prorated := refundWindows(sub.Created, renewed, rp)
	e := v1.SelfServiceSubscription{
		ID: sub.ID, SkuID: sub.SkuID, SkuPartNumber: sub.SkuPartNumber, BuyerID: sub.OwnerID,
		Seats: int32(sub.TotalLicenses), Trial: sub.IsTrial, Status: sub.Status,
		Created: &metav1.Time{Time: sub.Created}, FullRefundUntil: &metav1.Time{Time: full}, ProratedRefundUntil: &metav1.Time{Time: prorated},
		AssignedUsers: int32(seats.assigned), FreeOrgSeats: int32(seats.free), OrgSeatsInUse: int32(max(0, seats.orgInUse)),
		TakeoverPossible: seats.free >= seats.assigned,
	}
	if renewed != nil {
		e.LastRenewal = &metav1.Time{Time: *renewed}
	}
	if prev == nil {
		return e
	}
	if seats.orgInUse < 0 {
		e.OrgSeatsInUse = prev.OrgSeatsInUse
	}
	if prev.FullRefundUntil != nil && prev.FullRefundUntil.Time.Equal(full) {
		e.RefundWarned = prev.RefundWarned
	}
	return e
}

// Subscription statuses (companySubscription.status).
const (
	statusEnabled   = "Enabled"
	statusWarning   = "Warning"
	statusSuspended = "Suspended"
	statusLockedOut = "LockedOut"
	statusDeleted   = "Deleted"
)

// servingStatus tells whether a subscription in this status still licenses
// its users: a cancelled or unpaid subscription passes through Warning and
// Suspended (or LockedOut) with its users' licences kept, until Deleted.
func servingStatus(status string) bool {
	for _, s := range []string{statusEnabled, statusWarning, statusSuspended, statusLockedOut} {
		if strings.EqualFold(status, s) {
			return true
		}
	}
	return false
}

// tracked tells whether a status entry is a self-service subscription still
// in its buyer's hands: serving, and no handover recorded. Only tracked
// entries are followed, counted as active and warned about.
func tracked(e v1.SelfServiceSubscription) bool {
	return e.Handover == "" && servingStatus(e.Status)
}

// handoverFacts is what one run learned about a tracked self-service
// subscription.
type handoverFacts struct {
	// status is its status now, from the list or read by id; gone: the read
	// by id answered 404.
	status string
	gone   bool
	// seatsInUse is the consumed units of its billing account's subscribed
	// SKU, -1 when subscribedSkus does not list it.
	seatsInUse int
	// orgSeatsInUse is the organisation's seats of the SKU in use, -1 when the
	// organisation's account is not known this run.
	orgSeatsInUse int
	// buyer is the buyer read by id, nil when not read or not found.
	buyer *graph.User
}

// ended: the subscription is Deleted, or gone.
func (f handoverFacts) ended() bool { return f.gone || strings.EqualFold(f.status, statusDeleted) }

// released: its seats serve nobody any more. Its billing account's consumed
// units decide when subscribedSkus lists them; otherwise only its end does.
func (f handoverFacts) released() bool {
	switch {
	case f.gone:
		return true
	case f.seatsInUse >= 0:
		return f.seatsInUse == 0
	}
	return f.ended()
}

// needsBuyer tells whether the subscription may have left its buyer's
// hands, so the buyer must be read: its seats were released, and it ended or
// its last seat in use was released since the last run. A subscription
// Warning or Suspended with its seats in use never is, whatever a list
// left out.
func needsBuyer(prev v1.SelfServiceSubscription, f handoverFacts) bool {
	return f.released() && (f.ended() || prev.AssignedUsers > 0)
}

// handoverVerdict decides, from positive evidence only, whether and how a
// tracked self-service subscription (prev, as of the last run) left its
// buyer's hands; decided is false when the evidence does not settle it yet.
//
//   - TakenOver: its seats are no longer in use (its billing account's
//     subscribed SKU), the buyer holds the SKU, and the organisation's seats
//     of the SKU in use rose since the last run: an admin moved its users
//     onto an organisation subscription.
//   - Otherwise nothing is decided until it ended (Deleted, or 404 by id);
//     then a trial Expired and a paid subscription was Cancelled, the
//     evidence saying whether the buyer still holds the SKU from elsewhere.
//     A buyer who still holds it while the organisation's account is not
//     known this run is decided later.
func handoverVerdict(prev v1.SelfServiceSubscription, f handoverFacts) (verdict v1.HandoverVerdict, evidence string, decided bool) {
	if !f.released() {
		return "", "", false
	}
	state := "self-service subscription " + f.state()
	holds := f.buyer != nil && holdsSku(f.buyer, prev.SkuID)
	if holds && f.orgSeatsInUse > int(prev.OrgSeatsInUse) {
		return v1.VerdictTakenOver, fmt.Sprintf("%s, its seats no longer in use; buyer %s holds %s (assigned %s) and the organisation's seats of it in use rose from %d to %d",
			state, userName(f.buyer), prev.SkuPartNumber, assignedHow(f.buyer, prev.SkuID), prev.OrgSeatsInUse, f.orgSeatsInUse), true
	}
	if !f.ended() || (holds && f.orgSeatsInUse < 0) {
		return "", "", false
	}
	verdict = v1.VerdictCancelled
	if prev.Trial {
		verdict, state = v1.VerdictExpired, "trial "+f.state()
	}
	switch {
	case holds:
		return verdict, fmt.Sprintf("%s; buyer %s still holds %s, but no organisation seat of it was assigned (%d in use, %d before)",
			state, userName(f.buyer), prev.SkuPartNumber, f.orgSeatsInUse, prev.OrgSeatsInUse), true
	case f.buyer == nil:
		return verdict, state + "; buyer no longer exists in the directory", true
	}
	return verdict, state + "; buyer " + userName(f.buyer) + " no longer holds " + prev.SkuPartNumber, true
}

// state says where the subscription is now, for evidence.
func (f handoverFacts) state() string {
	if f.gone {
		return "no longer exists (404 by id)"
	}
	return "now " + f.status
}

func holdsSku(u *graph.User, skuID string) bool {
	return slices.ContainsFunc(u.AssignedSkuIDs, func(id string) bool { return strings.EqualFold(id, skuID) })
}

// assignedHow says how a user holds a SKU: directly or through a group.
func assignedHow(u *graph.User, skuID string) string {
	for _, ls := range u.LicenseStates {
		if strings.EqualFold(ls.SkuID, skuID) && ls.AssignedByGroup != "" {
			return "through group " + ls.AssignedByGroup
		}
	}
	return "directly"
}

func userName(u *graph.User) string {
	if u.UserPrincipalName != "" {
		return u.UserPrincipalName
	}
	return u.ID
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
