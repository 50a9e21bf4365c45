// Package tracking decides about self-service subscriptions from what
// Microsoft Graph answered: which subscriptions users bought on their own
// (ClassifySelfService), the seats around them (View), and whether one left
// its buyer's hands, on positive evidence only (HandoverVerdict). It is pure
// and imports neither Kubernetes nor the Graph SDK (the values come from
// internal/m365/directory), so fuzzing it instruments almost nothing.
package tracking

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/directory"
)

// Entry is what the last run recorded of a tracked self-service
// subscription (the controller's status entry, without Kubernetes types).
type Entry struct {
	ID, SkuID, SkuPartNumber string
	Trial                    bool
	// AssignedUsers is the subscription's seats in use at the last run.
	AssignedUsers int32
	// OrgSeatsInUse is the organisation's seats of the SKU in use at the
	// last run.
	OrgSeatsInUse int32
}

// Verdict is how a self-service subscription left its buyer's hands; the
// values are the API's HandoverVerdict.
type Verdict string

const (
	TakenOver Verdict = "TakenOver"
	Cancelled Verdict = "Cancelled"
	Expired   Verdict = "Expired"
)

// OwnerTypeUser is the ownerType of subscriptions a user (not the organisation) owns.
const OwnerTypeUser = "User"

// ClassifySelfService returns the subscriptions bought by users on their
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
func ClassifySelfService(subs []directory.Subscription, skus []directory.SubscribedSku) (selfService []directory.Subscription, orgAccounts map[string]bool) {
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

func ownedByUser(sub directory.Subscription) bool {
	return strings.EqualFold(sub.OwnerType, OwnerTypeUser)
}

// organisationAccounts names the organisation's billing accounts: every
// account holding a subscription not owned by a user, or, when there is
// none, the account holding the most subscriptions (then seats, then the
// lowest ID).
func organisationAccounts(subs []directory.Subscription, accountOf map[string]string) map[string]bool {
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

// SkuKey normalises a SKU ID for lookups: Graph does not promise one letter
// case across subscriptions, subscribed SKUs and users.
func SkuKey(id string) string { return strings.ToLower(id) }

// View indexes one run's Graph answers for tracking.
type View struct {
	// SelfService are the subscriptions ClassifySelfService recognised.
	SelfService []directory.Subscription
	// Listed are all subscriptions of the list, by ID.
	Listed map[string]directory.Subscription
	// inUse is, per subscription ID, the consumed units of the subscribed-SKU
	// entry holding it. A self-service buyer pays from a billing account of
	// their own, so that entry is the subscription's alone: its consumed
	// units are the users a takeover must move.
	inUse map[string]int
	// free and orgInUse count, per SKU (SkuKey), the organisation's unused
	// seats (enabled + warning units minus consumed ones) and its seats in
	// use. Self-service accounts are not counted.
	free, orgInUse map[string]int
	// orgKnown: the organisation's billing account was recognised.
	orgKnown bool
}

func NewView(subs []directory.Subscription, skus []directory.SubscribedSku) View {
	selfService, org := ClassifySelfService(subs, skus)
	d := View{SelfService: selfService, Listed: make(map[string]directory.Subscription, len(subs)),
		inUse: map[string]int{}, free: map[string]int{}, orgInUse: map[string]int{}, orgKnown: len(org) > 0}
	for _, sub := range subs {
		d.Listed[sub.ID] = sub
	}
	for _, sku := range skus {
		for _, id := range sku.SubscriptionIDs {
			d.inUse[id] = sku.Consumed
		}
		if org[sku.AccountID] {
			k := SkuKey(sku.SkuID)
			d.free[k] += max(0, sku.Enabled+sku.Warning-sku.Consumed)
			d.orgInUse[k] += sku.Consumed
		}
	}
	return d
}

// Seats are the seat numbers of one self-service subscription's status
// entry; orgInUse is -1 when the organisation's account is not known.
type Seats struct{ Assigned, Free, OrgInUse int }

func (d View) Seats(sub directory.Subscription) Seats {
	c := Seats{Assigned: d.inUse[sub.ID], Free: d.free[SkuKey(sub.SkuID)], OrgInUse: -1}
	if d.orgKnown {
		c.OrgInUse = d.orgInUse[SkuKey(sub.SkuID)]
	}
	return c
}

// facts gathers what this run's answers show about a self-service
// subscription whose current status is status (gone: 404 by id).
func (d View) Facts(prev Entry, status string, gone bool) Facts {
	f := Facts{Status: status, Gone: gone, SeatsInUse: -1, OrgSeatsInUse: -1}
	if n, ok := d.inUse[prev.ID]; ok {
		f.SeatsInUse = n
	}
	if d.orgKnown {
		f.OrgSeatsInUse = d.orgInUse[SkuKey(prev.SkuID)]
	}
	return f
}

// Subscription statuses (companySubscription.status).
const (
	StatusEnabled   = "Enabled"
	StatusWarning   = "Warning"
	StatusSuspended = "Suspended"
	StatusLockedOut = "LockedOut"
	StatusDeleted   = "Deleted"
)

// ServingStatus tells whether a subscription in this status still licenses
// its users: a cancelled or unpaid subscription passes through Warning and
// Suspended (or LockedOut) with its users' licences kept, until Deleted.
func ServingStatus(status string) bool {
	for _, s := range []string{StatusEnabled, StatusWarning, StatusSuspended, StatusLockedOut} {
		if strings.EqualFold(status, s) {
			return true
		}
	}
	return false
}

// Facts is what one run learned about a tracked self-service
// subscription.
type Facts struct {
	// status is its status now, from the list or read by id; gone: the read
	// by id answered 404.
	Status string
	Gone   bool
	// seatsInUse is the consumed units of its billing account's subscribed
	// SKU, -1 when subscribedSkus does not list it.
	SeatsInUse int
	// orgSeatsInUse is the organisation's seats of the SKU in use, -1 when the
	// organisation's account is not known this run.
	OrgSeatsInUse int
	// buyer is the buyer read by id, nil when not read or not found.
	Buyer *directory.User
}

// Ended: the subscription is Deleted, or gone.
func (f Facts) Ended() bool { return f.Gone || strings.EqualFold(f.Status, StatusDeleted) }

// Released: its seats serve nobody any more. Its billing account's consumed
// units decide when subscribedSkus lists them; otherwise only its end does.
func (f Facts) Released() bool {
	switch {
	case f.Gone:
		return true
	case f.SeatsInUse >= 0:
		return f.SeatsInUse == 0
	}
	return f.Ended()
}

// NeedsBuyer tells whether the subscription may have left its buyer's
// hands, so the buyer must be read: its seats were released, and it ended or
// its last seat in use was released since the last run. A subscription
// Warning or Suspended with its seats in use never is, whatever a list
// left out.
func NeedsBuyer(prev Entry, f Facts) bool {
	return f.Released() && (f.Ended() || prev.AssignedUsers > 0)
}

// HandoverVerdict decides, from positive evidence only, whether and how a
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
func HandoverVerdict(prev Entry, f Facts) (verdict Verdict, evidence string, decided bool) {
	if !f.Released() {
		return "", "", false
	}
	state := "self-service subscription " + f.state()
	holds := f.Buyer != nil && holdsSku(f.Buyer, prev.SkuID)
	if holds && f.OrgSeatsInUse > int(prev.OrgSeatsInUse) {
		return TakenOver, fmt.Sprintf("%s, its seats no longer in use; buyer %s holds %s (assigned %s) and the organisation's seats of it in use rose from %d to %d",
			state, userName(f.Buyer), prev.SkuPartNumber, assignedHow(f.Buyer, prev.SkuID), prev.OrgSeatsInUse, f.OrgSeatsInUse), true
	}
	if !f.Ended() || (holds && f.OrgSeatsInUse < 0) {
		return "", "", false
	}
	verdict = Cancelled
	if prev.Trial {
		verdict, state = Expired, "trial "+f.state()
	}
	switch {
	case holds:
		return verdict, fmt.Sprintf("%s; buyer %s still holds %s, but no organisation seat of it was assigned (%d in use, %d before)",
			state, userName(f.Buyer), prev.SkuPartNumber, f.OrgSeatsInUse, prev.OrgSeatsInUse), true
	case f.Buyer == nil:
		return verdict, state + "; buyer no longer exists in the directory", true
	}
	return verdict, state + "; buyer " + userName(f.Buyer) + " no longer holds " + prev.SkuPartNumber, true
}

// state says where the subscription is now, for evidence.
func (f Facts) state() string {
	if f.Gone {
		return "no longer exists (404 by id)"
	}
	return "now " + f.Status
}

func holdsSku(u *directory.User, skuID string) bool {
	return slices.ContainsFunc(u.AssignedSkuIDs, func(id string) bool { return strings.EqualFold(id, skuID) })
}

// assignedHow says how a user holds a SKU: directly or through a group.
func assignedHow(u *directory.User, skuID string) string {
	for _, ls := range u.LicenseStates {
		if strings.EqualFold(ls.SkuID, skuID) && ls.AssignedByGroup != "" {
			return "through group " + ls.AssignedByGroup
		}
	}
	return "directly"
}

func userName(u *directory.User) string {
	if u.UserPrincipalName != "" {
		return u.UserPrincipalName
	}
	return u.ID
}
