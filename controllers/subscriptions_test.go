package controllers

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/tracking"
)

// Test fixtures: SKU IDs and billing accounts as Graph returns them.
const (
	skuCopilot = "639dec6b-bb19-468b-871c-c5c441c4b0cb"
	skuSPB     = "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46"
	orgAcct    = "org-account"
	selfAcct1  = "erin-account"
	selfAcct2  = "frank-account"
)

func graphSub(id, sku, ownerType string, seats int) graph.Subscription {
	return graph.Subscription{ID: id, SkuID: sku, OwnerType: ownerType, TotalLicenses: seats, Status: "Enabled"}
}

func graphSku(account, sku string, enabled, consumed int, subIDs ...string) graph.SubscribedSku {
	return graph.SubscribedSku{AccountID: account, SkuID: sku, Enabled: enabled, Consumed: consumed, SubscriptionIDs: subIDs}
}

func TestClassifySelfService(t *testing.T) {
	cases := map[string]struct {
		reason       string
		subs         []graph.Subscription
		skus         []graph.SubscribedSku
		wantIDs      []string
		wantAccounts []string
	}{
		"admin-bought organisation subscription with ownerType User": {
			reason: "the sample directory's 25-seat Business Premium and 10-seat Copilot are admin-bought with ownerType User; only the purchase paid from the buyer's own account counts",
			subs: []graph.Subscription{
				graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10), graphSub("erin-copilot", skuCopilot, "User", 1),
			},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"),
				graphSku(selfAcct1, skuCopilot, 1, 1, "erin-copilot"),
			},
			wantIDs: []string{"erin-copilot"}, wantAccounts: []string{orgAcct},
		},
		"company-owned subscription names the organisation account": {
			reason: "an account holding a subscription not owned by a user is the organisation's, even when user-owned accounts hold more subscriptions",
			subs: []graph.Subscription{
				graphSub("org-spb", skuSPB, "Company", 25), graphSub("erin-1", skuCopilot, "User", 1), graphSub("erin-2", skuSPB, "User", 1),
			},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(selfAcct1, skuCopilot, 1, 1, "erin-1"), graphSku(selfAcct1, skuSPB, 1, 1, "erin-2"),
			},
			wantIDs: []string{"erin-1", "erin-2"}, wantAccounts: []string{orgAcct},
		},
		"ownerType is compared case-insensitively": {
			reason: "Graph's casing of enum-like strings varies",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10), graphSub("erin", skuCopilot, "user", 1)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"), graphSku(selfAcct1, skuCopilot, 1, 1, "erin"),
			},
			wantIDs: []string{"erin"}, wantAccounts: []string{orgAcct},
		},
		"subscription no account lists is not counted": {
			reason: "without a billing account the rule cannot tell the buyer's from the organisation's, so it does not guess",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10), graphSub("orphan", skuCopilot, "User", 1)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"),
			},
			wantIDs: nil, wantAccounts: []string{orgAcct},
		},
		"non-user owner is never self-service": {
			reason: "only ownerType User can be a self-service purchase; an account holding a partner-owned subscription is not a buyer's",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "Company", 25), graphSub("partner", skuCopilot, "Partner", 5)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(selfAcct1, skuCopilot, 5, 0, "partner"),
			},
			wantIDs: nil, wantAccounts: []string{selfAcct1, orgAcct},
		},
		"several buyers, each with their own account": {
			reason: "every self-service purchase is paid from the buyer's account; the organisation's holds the most subscriptions",
			subs: []graph.Subscription{
				graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10),
				graphSub("erin", skuCopilot, "User", 1), graphSub("frank", skuCopilot, "User", 3),
			},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"),
				graphSku(selfAcct1, skuCopilot, 1, 1, "erin"), graphSku(selfAcct2, skuCopilot, 3, 1, "frank"),
			},
			wantIDs: []string{"erin", "frank"}, wantAccounts: []string{orgAcct},
		},
		"two organisation accounts": {
			reason: "a tenant can pay from several organisation accounts (e.g. an MCA and an older MOSA); a user-owned subscription in either is the organisation's",
			subs: []graph.Subscription{
				graphSub("org-spb", skuSPB, "Company", 25), graphSub("mosa-e3", skuSPB, "Company", 5), graphSub("mosa-copilot", skuCopilot, "User", 10),
				graphSub("erin", skuCopilot, "User", 1),
			},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku("mosa-account", skuSPB, 5, 5, "mosa-e3"),
				graphSku("mosa-account", skuCopilot, 10, 2, "mosa-copilot"), graphSku(selfAcct1, skuCopilot, 1, 1, "erin"),
			},
			wantIDs: []string{"erin"}, wantAccounts: []string{"mosa-account", orgAcct},
		},
		"no subscriptions": {
			reason:  "an empty directory has nothing to report and no organisation account",
			wantIDs: nil, wantAccounts: nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, account := tracking.ClassifySelfService(tc.subs, tc.skus)
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("%s\nself-service IDs (-want +got):\n%s", tc.reason, diff)
			}
			var accounts []string
			for a := range account {
				accounts = append(accounts, a)
			}
			slices.Sort(accounts)
			if diff := cmp.Diff(tc.wantAccounts, accounts); diff != "" {
				t.Errorf("%s\norganisation accounts (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func refTo[T any](v T) *T { return &v }

func TestLastRenewal(t *testing.T) {
	cases := map[string]struct {
		reason  string
		created time.Time
		next    *time.Time
		now     time.Time
		want    *time.Time
	}{
		"never renewed": {
			reason:  "nextLifecycle one month after the purchase: the first renewal is still ahead",
			created: parseTime("2026-11-10T09:00:00Z"), next: refTo(parseTime("2026-12-10T09:00:00Z")), now: parseTime("2026-11-20T00:00:00Z"),
			want: nil,
		},
		"renewed once": {
			reason:  "nextLifecycle two months after the purchase: it renewed one month before it",
			created: parseTime("2026-09-10T09:00:00Z"), next: refTo(parseTime("2026-11-10T09:00:00Z")), now: parseTime("2026-10-20T00:00:00Z"),
			want: refTo(parseTime("2026-10-10T09:00:00Z")),
		},
		"renewed moments ago": {
			reason:  "a renewal right now restarts the refund windows now",
			created: parseTime("2026-08-01T00:00:00Z"), next: refTo(parseTime("2026-12-25T12:00:00Z")), now: parseTime("2026-11-25T12:00:05Z"),
			want: refTo(parseTime("2026-11-25T12:00:00Z")),
		},
		"inferred renewal in the future": {
			reason:  "a renewal cannot lie ahead of the clock (e.g. an annual term): no renewal",
			created: parseTime("2026-01-01T00:00:00Z"), next: refTo(parseTime("2027-01-01T00:00:00Z")), now: parseTime("2026-06-01T00:00:00Z"),
			want: nil,
		},
		"renewed on the 31st": {
			reason:  "Jan 31 + 1 month is Mar 3; the renewal that just happened is Jan 31, not Feb 3",
			created: parseTime("2026-11-30T10:00:00Z"), next: refTo(parseTime("2027-03-03T10:00:00Z")), now: parseTime("2027-01-31T10:00:07Z"),
			want: refTo(parseTime("2027-01-31T10:00:00Z")),
		},
		"bought on the 31st, days later": {
			reason:  "Jan 31 + 1 month is Mar 3, and so is Feb 3 + 1 month; a first term is not a renewal on Feb 3",
			created: parseTime("2027-01-31T10:00:00Z"), next: refTo(parseTime("2027-03-03T10:00:00Z")), now: parseTime("2027-02-05T00:00:00Z"),
			want: nil,
		},
		"unknown next lifecycle": {
			reason:  "without nextLifecycleDateTime nothing can be inferred",
			created: parseTime("2026-01-01T00:00:00Z"), now: parseTime("2026-06-01T00:00:00Z"),
			want: nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := lastRenewal(graph.Subscription{Created: tc.created, NextLifecycle: tc.next}, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRefundWindows(t *testing.T) {
	hours := func(h int) *metav1.Duration { return &metav1.Duration{Duration: time.Duration(h) * time.Hour} }
	cases := map[string]struct {
		reason                string
		spec                  v1.SubscriptionTracking
		created               time.Time
		renewed               *time.Time
		wantFull, wantProrate time.Time
	}{
		"from the purchase, defaults": {
			reason:   "full refund within 24 hours of the purchase, prorated within 7 days, when spec.subscriptions sets no window",
			created:  parseTime("2026-11-25T10:30:00Z"),
			wantFull: parseTime("2026-11-26T10:30:00Z"), wantProrate: parseTime("2026-12-02T10:30:00Z"),
		},
		"from the latest renewal": {
			reason:  "a renewal opens new windows, counted from the renewal",
			created: parseTime("2026-09-01T00:00:00Z"), renewed: refTo(parseTime("2026-11-01T08:00:00Z")),
			wantFull: parseTime("2026-11-02T08:00:00Z"), wantProrate: parseTime("2026-11-08T08:00:00Z"),
		},
		"Chile": {
			reason:   "a partner purchase in Chile is refunded prorated for 10 days",
			spec:     v1.SubscriptionTracking{ProratedRefundWindow: hours(240)},
			created:  parseTime("2026-11-25T10:30:00Z"),
			wantFull: parseTime("2026-11-26T10:30:00Z"), wantProrate: parseTime("2026-12-05T10:30:00Z"),
		},
		"no full refund": {
			reason:   "a billing program without a full refund: its window ends at the purchase",
			spec:     v1.SubscriptionTracking{FullRefundWindow: hours(0), ProratedRefundWindow: hours(168)},
			created:  parseTime("2026-11-25T10:30:00Z"),
			wantFull: parseTime("2026-11-25T10:30:00Z"), wantProrate: parseTime("2026-12-02T10:30:00Z"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			full, prorated := refundWindows(tc.created, tc.renewed, refundPolicyOf(tc.spec))
			if diff := cmp.Diff([]time.Time{tc.wantFull, tc.wantProrate}, []time.Time{full, prorated}); diff != "" {
				t.Errorf("%s\n(-want +got) [full, prorated]:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDescribeSelfService(t *testing.T) {
	created := parseTime("2026-11-25T10:00:00Z")
	bought := graph.Subscription{ID: "erin", SkuID: skuCopilot, SkuPartNumber: "Microsoft_365_Copilot", OwnerID: "erin-id",
		TotalLicenses: 3, Status: "Enabled", Created: created, NextLifecycle: refTo(created.AddDate(0, 1, 0))}
	renewed := bought
	renewed.Created = created.AddDate(0, -2, 0)
	renewed.NextLifecycle = refTo(created.AddDate(0, 1, 0)) // renewed at `created`
	warned := &v1.SelfServiceSubscription{ID: "erin", FullRefundUntil: &metav1.Time{Time: created.Add(24 * time.Hour)}, RefundWarned: true}
	staleWarned := &v1.SelfServiceSubscription{ID: "erin", FullRefundUntil: &metav1.Time{Time: created.AddDate(0, -1, 1)}, RefundWarned: true}
	now := created.Add(time.Hour)

	base := v1.SelfServiceSubscription{
		ID: "erin", SkuID: skuCopilot, SkuPartNumber: "Microsoft_365_Copilot", BuyerID: "erin-id", Seats: 3, Status: "Enabled",
		Created: &metav1.Time{Time: created}, FullRefundUntil: &metav1.Time{Time: created.Add(24 * time.Hour)},
		ProratedRefundUntil: &metav1.Time{Time: created.Add(7 * 24 * time.Hour)},
	}
	with := func(f func(e *v1.SelfServiceSubscription)) v1.SelfServiceSubscription {
		e := base
		f(&e)
		return e
	}
	cases := map[string]struct {
		reason string
		sub    graph.Subscription
		seats  tracking.Seats
		prev   *v1.SelfServiceSubscription
		want   v1.SelfServiceSubscription
	}{
		"enough free organisation seats": {
			reason: "7 free seats cover the 3 users of a 3-seat purchase",
			sub:    bought, seats: tracking.Seats{Free: 7, Assigned: 3, OrgInUse: 3},
			want: with(func(e *v1.SelfServiceSubscription) {
				e.AssignedUsers, e.FreeOrgSeats, e.OrgSeatsInUse, e.TakeoverPossible = 3, 7, 3, true
			}),
		},
		"too few free organisation seats": {
			reason: "2 free seats cannot take over 3 assigned users",
			sub:    bought, seats: tracking.Seats{Free: 2, Assigned: 3},
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.FreeOrgSeats = 3, 2 }),
		},
		"seats bought but unassigned need no organisation seat": {
			reason: "a takeover moves users, not seats: one user of three seats needs one free seat",
			sub:    bought, seats: tracking.Seats{Free: 1, Assigned: 1},
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.FreeOrgSeats, e.TakeoverPossible = 1, 1, true }),
		},
		"SKU IDs match whatever their letter case": {
			reason: "Graph does not promise one letter case across subscriptions and subscribed SKUs",
			sub:    func() graph.Subscription { b := bought; b.SkuID = strings.ToUpper(skuCopilot); return b }(),
			seats:  tracking.Seats{Free: 5, Assigned: 1},
			want: with(func(e *v1.SelfServiceSubscription) {
				e.SkuID = strings.ToUpper(skuCopilot)
				e.AssignedUsers, e.FreeOrgSeats, e.TakeoverPossible = 1, 5, true
			}),
		},
		"organisation unknown this run": {
			reason: "when no organisation account is recognised (-1), the seats it had in use last time are kept, so a takeover is still measured against them",
			sub:    bought, prev: &v1.SelfServiceSubscription{ID: "erin", OrgSeatsInUse: 4}, seats: tracking.Seats{Assigned: 1, OrgInUse: -1},
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.OrgSeatsInUse = 1, 4 }),
		},
		"warning carried over within the same window": {
			reason: "the RefundWindowClosing Event is sent once per window, across reconciles",
			sub:    bought, prev: warned, seats: tracking.Seats{Assigned: 1},
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.RefundWarned = 1, true }),
		},
		"renewal resets the warning": {
			reason: "a renewal opens a new window, which gets its own warning",
			sub:    renewed, prev: staleWarned, seats: tracking.Seats{Assigned: 1},
			want: with(func(e *v1.SelfServiceSubscription) {
				e.AssignedUsers = 1
				e.Created = &metav1.Time{Time: created.AddDate(0, -2, 0)}
				e.LastRenewal = &metav1.Time{Time: created}
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, describeSelfService(tc.sub, tc.seats, tc.prev, refundPolicyOf(v1.SubscriptionTracking{}), now)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHandoverVerdict(t *testing.T) {
	paid := v1.SelfServiceSubscription{ID: "erin-copilot", SkuID: skuCopilot, SkuPartNumber: "Microsoft_365_Copilot", BuyerID: "erin-id",
		Status: "Enabled", AssignedUsers: 1, OrgSeatsInUse: 3}
	trial := paid
	trial.Trial = true
	holding := &graph.User{ID: "erin-id", UserPrincipalName: "erin@contoso.test", AssignedSkuIDs: []string{skuSPB, strings.ToUpper(skuCopilot)},
		LicenseStates: []graph.LicenseState{{SkuID: skuSPB}, {SkuID: skuCopilot}}}
	byGroup := &graph.User{ID: "erin-id", AssignedSkuIDs: []string{skuCopilot},
		LicenseStates: []graph.LicenseState{{SkuID: skuCopilot, AssignedByGroup: "copilot-users"}}}
	without := &graph.User{ID: "erin-id", UserPrincipalName: "erin@contoso.test", AssignedSkuIDs: []string{skuSPB}}
	// facts: status, seats of its own account in use (-1: not listed),
	// organisation seats in use (-1: organisation unknown), buyer.
	facts := func(status string, inUse, orgInUse int, buyer *graph.User) tracking.Facts {
		return tracking.Facts{Status: status, SeatsInUse: inUse, OrgSeatsInUse: orgInUse, Buyer: buyer}
	}
	gone := func(orgInUse int, buyer *graph.User) tracking.Facts {
		return tracking.Facts{Gone: true, SeatsInUse: -1, OrgSeatsInUse: orgInUse, Buyer: buyer}
	}
	type verdict struct {
		Verdict  v1.HandoverVerdict
		Evidence string
		Decided  bool
	}
	undecided := verdict{}
	cases := map[string]struct {
		reason string
		prev   v1.SelfServiceSubscription
		facts  tracking.Facts
		want   verdict
	}{
		"still Enabled, seat in use": {
			reason: "nothing changed hands",
			prev:   paid, facts: facts("Enabled", 1, 3, holding), want: undecided,
		},
		"failed card: Warning, seat in use": {
			reason: "an unpaid subscription in its grace period still licenses its user",
			prev:   paid, facts: facts("Warning", 1, 3, holding), want: undecided,
		},
		"failed card: Suspended, seat in use": {
			reason: "a suspended subscription keeps its users' licences: the buyer holds the SKU through this very subscription, which is no takeover",
			prev:   paid, facts: facts("Suspended", 1, 3, holding), want: undecided,
		},
		"Deleted but its seat still shown in use": {
			reason: "the two answers disagree (replication): wait until the seat is released",
			prev:   paid, facts: facts("Deleted", 1, 4, holding), want: undecided,
		},
		"Suspended, its account not in subscribed SKUs": {
			reason: "without the seat count only an end releases the seats",
			prev:   paid, facts: facts("Suspended", -1, 4, holding), want: undecided,
		},
		"organisation took a seat while the self-service seat is still used": {
			reason: "the organisation's seats rose and the buyer holds the SKU, but through the self-service seat still in use: someone else got the organisation seat",
			prev:   paid, facts: facts("Enabled", 1, 4, holding), want: undecided,
		},
		"takeover, cancelled through Warning": {
			reason: "its seat released, the buyer holds the SKU and the organisation's seats in use rose: moved onto an organisation subscription",
			prev:   paid, facts: facts("Warning", 0, 4, holding),
			want: verdict{v1.VerdictTakenOver, "self-service subscription now Warning, its seats no longer in use; buyer erin@contoso.test holds Microsoft_365_Copilot (assigned directly) and the organisation's seats of it in use rose from 3 to 4", true},
		},
		"takeover through a group, Deleted": {
			reason: "group-based assignment is named; without a UPN the object ID names the buyer",
			prev:   paid, facts: facts("Deleted", 0, 5, byGroup),
			want: verdict{v1.VerdictTakenOver, "self-service subscription now Deleted, its seats no longer in use; buyer erin-id holds Microsoft_365_Copilot (assigned through group copilot-users) and the organisation's seats of it in use rose from 3 to 5", true},
		},
		"takeover, gone by id": {
			reason: "404 by id releases its seats; the organisation covers the buyer",
			prev:   paid, facts: gone(4, holding),
			want: verdict{v1.VerdictTakenOver, "self-service subscription no longer exists (404 by id), its seats no longer in use; buyer erin@contoso.test holds Microsoft_365_Copilot (assigned directly) and the organisation's seats of it in use rose from 3 to 4", true},
		},
		"takeover of a trial": {
			reason: "a trial whose buyer moved onto an organisation seat was taken over, not expired",
			prev:   trial, facts: facts("Deleted", 0, 4, holding),
			want: verdict{v1.VerdictTakenOver, "self-service subscription now Deleted, its seats no longer in use; buyer erin@contoso.test holds Microsoft_365_Copilot (assigned directly) and the organisation's seats of it in use rose from 3 to 4", true},
		},
		"seat released, subscription goes on, no organisation seat": {
			reason: "the buyer gave up the seat or holds the SKU elsewhere; the subscription is not over: nothing to record yet",
			prev:   paid, facts: facts("Warning", 0, 3, holding), want: undecided,
		},
		"seat released, subscription goes on, buyer without the SKU": {
			reason: "a seat unassigned is not a cancellation",
			prev:   paid, facts: facts("Enabled", 0, 3, without), want: undecided,
		},
		"ended, buyer holds the SKU without a new organisation seat": {
			reason: "no positive evidence of a takeover: the subscription ended, recorded as cancelled with what is known",
			prev:   paid, facts: facts("Deleted", 0, 3, holding),
			want: verdict{v1.VerdictCancelled, "self-service subscription now Deleted; buyer erin@contoso.test still holds Microsoft_365_Copilot, but no organisation seat of it was assigned (3 in use, 3 before)", true},
		},
		"ended, buyer holds the SKU, organisation unknown this run": {
			reason: "the organisation's account is not recognised in this answer (short or empty list): decide when it is",
			prev:   paid, facts: facts("Deleted", 0, -1, holding), want: undecided,
		},
		"cancellation": {
			reason: "ended and its buyer without the SKU",
			prev:   paid, facts: facts("Deleted", 0, 3, without),
			want: verdict{v1.VerdictCancelled, "self-service subscription now Deleted; buyer erin@contoso.test no longer holds Microsoft_365_Copilot", true},
		},
		"cancellation, not in subscribed SKUs any more": {
			reason: "a Deleted subscription whose account left subscribedSkus released its seats",
			prev:   paid, facts: facts("Deleted", -1, 3, without),
			want: verdict{v1.VerdictCancelled, "self-service subscription now Deleted; buyer erin@contoso.test no longer holds Microsoft_365_Copilot", true},
		},
		"cancellation while the organisation's seats rose": {
			reason: "the organisation's seats rose for someone else: the buyer does not hold the SKU, so no takeover",
			prev:   paid, facts: facts("Deleted", 0, 4, without),
			want: verdict{v1.VerdictCancelled, "self-service subscription now Deleted; buyer erin@contoso.test no longer holds Microsoft_365_Copilot", true},
		},
		"buyer gone": {
			reason: "a buyer deleted from the directory cannot have been moved anywhere",
			prev:   paid, facts: gone(4, nil),
			want: verdict{v1.VerdictCancelled, "self-service subscription no longer exists (404 by id); buyer no longer exists in the directory", true},
		},
		"trial expiry": {
			reason: "a trial ended and its buyer without the SKU",
			prev:   trial, facts: facts("Deleted", 0, 3, without),
			want: verdict{v1.VerdictExpired, "trial now Deleted; buyer erin@contoso.test no longer holds Microsoft_365_Copilot", true},
		},
		"trial buyer gone": {
			reason: "a trial is still an expiry when its buyer left",
			prev:   trial, facts: gone(3, nil),
			want: verdict{v1.VerdictExpired, "trial no longer exists (404 by id); buyer no longer exists in the directory", true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, evidence, decided := tracking.HandoverVerdict(entryOf(tc.prev), tc.facts)
			if diff := cmp.Diff(tc.want, verdict{v1.HandoverVerdict(v), evidence, decided}); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestNeedsBuyer(t *testing.T) {
	inUse := v1.SelfServiceSubscription{ID: "erin", AssignedUsers: 1}
	unused := v1.SelfServiceSubscription{ID: "erin"}
	cases := map[string]struct {
		reason string
		prev   v1.SelfServiceSubscription
		facts  tracking.Facts
		want   bool
	}{
		"steady":                         {"its seat still in use: no read", inUse, tracking.Facts{Status: "Enabled", SeatsInUse: 1}, false},
		"failed card":                    {"Suspended with its seat in use: no read", inUse, tracking.Facts{Status: "Suspended", SeatsInUse: 1}, false},
		"seat released":                  {"its last seat was released since the last run: read the buyer once", inUse, tracking.Facts{Status: "Warning", SeatsInUse: 0}, true},
		"seat was already unused":        {"nothing changed since the last run: no read at every run", unused, tracking.Facts{Status: "Enabled", SeatsInUse: 0}, false},
		"ended":                          {"Deleted and released: read", unused, tracking.Facts{Status: "Deleted", SeatsInUse: 0}, true},
		"gone":                           {"404 by id: read", inUse, tracking.Facts{Gone: true, SeatsInUse: -1}, true},
		"not in subscribed SKUs, active": {"no seat count and not ended: no read", inUse, tracking.Facts{Status: "Enabled", SeatsInUse: -1}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tracking.NeedsBuyer(entryOf(tc.prev), tc.facts); got != tc.want {
				t.Errorf("%s: needsBuyer = %v, want %v", tc.reason, got, tc.want)
			}
		})
	}
}

func TestBoundSelfService(t *testing.T) {
	day := func(d int) *metav1.Time {
		return &metav1.Time{Time: parseTime("2026-10-01T00:00:00Z").AddDate(0, 0, d)}
	}
	entry := func(id, status string, d int) v1.SelfServiceSubscription {
		return v1.SelfServiceSubscription{ID: id, Status: status, Created: day(d)}
	}
	many := func(n int) []v1.SelfServiceSubscription {
		var out []v1.SelfServiceSubscription
		for i := range n {
			status := "Enabled"
			if i%2 == 0 {
				status = "Deleted"
			}
			out = append(out, entry(fmt.Sprintf("s%02d", i), status, i))
		}
		return out
	}
	ids := func(es []v1.SelfServiceSubscription) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	var wantMany []string
	for i := 59; i >= 0; i -= 2 { // 30 active, newest first
		wantMany = append(wantMany, fmt.Sprintf("s%02d", i))
	}
	for i := 58; len(wantMany) < maxSelfService; i -= 2 { // then the newest inactive ones
		wantMany = append(wantMany, fmt.Sprintf("s%02d", i))
	}
	cases := map[string]struct {
		reason string
		in     []v1.SelfServiceSubscription
		want   []string
	}{
		"active first, newest first, ID breaks ties": {
			reason: "what still costs money is what a reader looks for first",
			in: []v1.SelfServiceSubscription{
				entry("old-deleted", "Deleted", 1), entry("old-active", "Enabled", 1), entry("new-warning", "Warning", 5),
				entry("b-same-day", "Enabled", 3), entry("a-same-day", "Enabled", 3), entry("new-deleted", "Deleted", 9),
			},
			want: []string{"new-warning", "a-same-day", "b-same-day", "old-active", "new-deleted", "old-deleted"},
		},
		"bounded": {
			reason: "status stays small: at most maxSelfService entries, dropping the oldest inactive ones",
			in:     many(60),
			want:   wantMany,
		},
		"empty": {
			reason: "nothing in, nothing out",
			want:   nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ids(boundSelfService(tc.in))); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
