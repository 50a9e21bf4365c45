package controllers

import (
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// Refund windows (Microsoft Learn): a full refund within 24 hours of a
// purchase or renewal, a prorated one within 7 days, none after.
const (
	fullRefundWindow     = 24 * time.Hour
	proratedRefundWindow = 7 * 24 * time.Hour
)

// ownerTypeUser is the ownerType of subscriptions a user (not the organisation) owns.
const ownerTypeUser = "User"

// classifySelfService returns the subscriptions bought by users on their own.
//
// INFERRED (m365-api.md §3): ownerType "User" alone does not prove a
// self-service purchase, since an admin-bought organisation subscription can
// carry it too. A self-service buyer pays from a billing account of their
// own, so a subscription counts as self-service when its ownerType is "User"
// AND the billing account holding it (subscribedSkus[].accountId through
// subscriptionIds) is not the organisation's. The organisation's account is
// the one holding subscriptions owned by something other than a user, or
// failing that the one holding the most subscriptions (ties: most seats).
// This is the one place to correct if Microsoft documents a better signal.
func classifySelfService(subs []graph.Subscription, skus []graph.SubscribedSku) (selfService []graph.Subscription, orgAccount string) {
	accountOf := make(map[string]string)
	for _, sku := range skus {
		for _, id := range sku.SubscriptionIDs {
			accountOf[id] = sku.AccountID
		}
	}
	orgAccount = organisationAccount(subs, accountOf)
	for _, sub := range subs {
		account, known := accountOf[sub.ID]
		if strings.EqualFold(sub.OwnerType, ownerTypeUser) && known && account != orgAccount {
			selfService = append(selfService, sub)
		}
	}
	return selfService, orgAccount
}

func organisationAccount(subs []graph.Subscription, accountOf map[string]string) string {
	type tally struct{ subs, seats int }
	counts := map[string]*tally{}
	for _, sub := range subs {
		account, ok := accountOf[sub.ID]
		if !ok {
			continue
		}
		if !strings.EqualFold(sub.OwnerType, ownerTypeUser) {
			return account
		}
		if counts[account] == nil {
			counts[account] = &tally{}
		}
		counts[account].subs++
		counts[account].seats += sub.TotalLicenses
	}
	best, bestTally := "", tally{}
	for account, t := range counts {
		if t.subs > bestTally.subs || (t.subs == bestTally.subs && (t.seats > bestTally.seats || t.seats == bestTally.seats && account < best)) {
			best, bestTally = account, *t
		}
	}
	return best
}

// skuKey normalises a SKU ID for lookups: Graph does not promise one letter
// case across subscriptions, subscribed SKUs and users.
func skuKey(id string) string { return strings.ToLower(id) }

// freeOrgSeats counts, per SKU ID (skuKey), the unused seats the
// organisation's billing account holds: enabled + warning units minus
// consumed ones. Seats of self-service accounts are not counted.
func freeOrgSeats(skus []graph.SubscribedSku, orgAccount string) map[string]int {
	free := map[string]int{}
	for _, sku := range skus {
		if sku.AccountID != orgAccount {
			continue
		}
		free[skuKey(sku.SkuID)] += max(0, sku.Enabled+sku.Warning-sku.Consumed)
	}
	return free
}

// assignedSeats returns, per subscription ID, the seats in use in the
// subscribed-SKU entry holding it. A self-service buyer pays from a billing
// account of their own, so that entry is the subscription's alone: its
// consumed units are the users a takeover must move.
func assignedSeats(skus []graph.SubscribedSku) map[string]int {
	used := map[string]int{}
	for _, sku := range skus {
		for _, id := range sku.SubscriptionIDs {
			used[id] = sku.Consumed
		}
	}
	return used
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

// refundWindows returns the ends of the full and prorated refund windows,
// counted from the purchase or the latest renewal.
func refundWindows(created time.Time, renewed *time.Time) (full, prorated time.Time) {
	start := created
	if renewed != nil {
		start = *renewed
	}
	return start.Add(fullRefundWindow), start.Add(proratedRefundWindow)
}

// describeSelfService builds the status entry of one self-service
// subscription, carrying over whether its refund warning was sent for the
// current window. A takeover moves each assigned user onto a free
// organisation seat, so it is possible when free seats cover assigned users.
func describeSelfService(sub graph.Subscription, free map[string]int, assigned int, prev *v1.SelfServiceSubscription, now time.Time) v1.SelfServiceSubscription {
	renewed := lastRenewal(sub, now)
	full, prorated := refundWindows(sub.Created, renewed)
	e := v1.SelfServiceSubscription{
		ID: sub.ID, SkuID: sub.SkuID, SkuPartNumber: sub.SkuPartNumber, BuyerID: sub.OwnerID,
		Seats: int32(sub.TotalLicenses), Trial: sub.IsTrial, Status: sub.Status,
		Created: &metav1.Time{Time: sub.Created}, FullRefundUntil: &metav1.Time{Time: full}, ProratedRefundUntil: &metav1.Time{Time: prorated},
		AssignedUsers: int32(assigned), FreeOrgSeats: int32(free[skuKey(sub.SkuID)]), TakeoverPossible: free[skuKey(sub.SkuID)] >= assigned,
	}
	if renewed != nil {
		e.LastRenewal = &metav1.Time{Time: *renewed}
	}
	if prev != nil && prev.FullRefundUntil != nil && prev.FullRefundUntil.Time.Equal(full) {
		e.RefundWarned = prev.RefundWarned
	}
	return e
}

// handoverVerdict decides how an active self-service subscription left the
// buyer's hands. A buyer who now holds the same SKU while the self-service
// subscription no longer serves them was moved into an organisation
// subscription: a takeover. Otherwise a trial ended (expiry) or the
// subscription was cancelled. The evidence says why.
func handoverVerdict(prev v1.SelfServiceSubscription, now *graph.Subscription, buyer *graph.User) (v1.HandoverVerdict, string) {
	state := "no longer listed"
	if now != nil {
		state = "now " + now.Status
	}
	holds := buyer != nil && slices.ContainsFunc(buyer.AssignedSkuIDs, func(id string) bool { return strings.EqualFold(id, prev.SkuID) })
	switch {
	case holds:
		how := "directly"
		for _, ls := range buyer.LicenseStates {
			if strings.EqualFold(ls.SkuID, prev.SkuID) && ls.AssignedByGroup != "" {
				how = "through group " + ls.AssignedByGroup
			}
		}
		return v1.VerdictTakenOver, "self-service subscription " + state + "; buyer " + userName(buyer) + " still holds " + prev.SkuPartNumber + " (assigned " + how + ") from an organisation subscription"
	case prev.Trial:
		return v1.VerdictExpired, "trial " + state + "; buyer no longer holds " + prev.SkuPartNumber
	case buyer == nil:
		return v1.VerdictCancelled, "self-service subscription " + state + "; buyer no longer exists in the directory"
	}
	return v1.VerdictCancelled, "self-service subscription " + state + "; buyer " + userName(buyer) + " no longer holds " + prev.SkuPartNumber
}

func userName(u *graph.User) string {
	if u.UserPrincipalName != "" {
		return u.UserPrincipalName
	}
	return u.ID
}

// maxSelfService and maxHandovers bound the status lists; totals and counters
// keep the full numbers.
const (
	maxSelfService = 50
	maxHandovers   = 20
)

// boundSelfService orders entries active first, newest first, and keeps at most maxSelfService.
func boundSelfService(entries []v1.SelfServiceSubscription) []v1.SelfServiceSubscription {
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if activeStatus(a.Status) != activeStatus(b.Status) {
			return activeStatus(a.Status)
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
	st.Handovers = append([]v1.HandoverRecord{h}, st.Handovers...)
	if len(st.Handovers) > maxHandovers {
		st.Handovers = st.Handovers[:maxHandovers]
	}
}
