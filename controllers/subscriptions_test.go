package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
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
		reason      string
		subs        []graph.Subscription
		skus        []graph.SubscribedSku
		wantIDs     []string
		wantAccount string
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
			wantIDs: []string{"erin-copilot"}, wantAccount: orgAcct,
		},
		"company-owned subscription names the organisation account": {
			reason: "an account holding a subscription not owned by a user is the organisation's, even when user-owned accounts hold more subscriptions",
			subs: []graph.Subscription{
				graphSub("org-spb", skuSPB, "Company", 25), graphSub("erin-1", skuCopilot, "User", 1), graphSub("erin-2", skuSPB, "User", 1),
			},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(selfAcct1, skuCopilot, 1, 1, "erin-1"), graphSku(selfAcct1, skuSPB, 1, 1, "erin-2"),
			},
			wantIDs: []string{"erin-1", "erin-2"}, wantAccount: orgAcct,
		},
		"ownerType is compared case-insensitively": {
			reason: "Graph's casing of enum-like strings varies",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10), graphSub("erin", skuCopilot, "user", 1)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"), graphSku(selfAcct1, skuCopilot, 1, 1, "erin"),
			},
			wantIDs: []string{"erin"}, wantAccount: orgAcct,
		},
		"subscription no account lists is not counted": {
			reason: "without a billing account the rule cannot tell the buyer's from the organisation's, so it does not guess",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "User", 25), graphSub("org-copilot", skuCopilot, "User", 10), graphSub("orphan", skuCopilot, "User", 1)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"),
			},
			wantIDs: nil, wantAccount: orgAcct,
		},
		"non-user owner is never self-service": {
			reason: "only ownerType User can be a self-service purchase",
			subs:   []graph.Subscription{graphSub("org-spb", skuSPB, "Company", 25), graphSub("partner", skuCopilot, "Partner", 5)},
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(selfAcct1, skuCopilot, 5, 0, "partner"),
			},
			wantIDs: nil, wantAccount: orgAcct,
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
			wantIDs: []string{"erin", "frank"}, wantAccount: orgAcct,
		},
		"no subscriptions": {
			reason:  "an empty directory has nothing to report and no organisation account",
			wantIDs: nil, wantAccount: "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, account := classifySelfService(tc.subs, tc.skus)
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
			}
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("%s\nself-service IDs (-want +got):\n%s", tc.reason, diff)
			}
			if account != tc.wantAccount {
				t.Errorf("%s\norganisation account = %q, want %q", tc.reason, account, tc.wantAccount)
			}
		})
	}
}

func TestFreeOrgSeats(t *testing.T) {
	cases := map[string]struct {
		reason string
		skus   []graph.SubscribedSku
		want   map[string]int
	}{
		"self-service seats are not counted": {
			reason: "the 8-seat self-service purchase has 7 unused seats, but only the organisation's 10-3 can take it over",
			skus: []graph.SubscribedSku{
				graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"), graphSku(selfAcct1, skuCopilot, 8, 1, "erin"),
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"),
			},
			want: map[string]int{skuCopilot: 7, skuSPB: 20},
		},
		"warning seats are free, suspended ones are not": {
			reason: "a subscription in its grace period (Warning) can still take users; a suspended one cannot",
			skus:   []graph.SubscribedSku{{AccountID: orgAcct, SkuID: skuCopilot, Enabled: 5, Warning: 2, Suspended: 4, Consumed: 3}},
			want:   map[string]int{skuCopilot: 4},
		},
		"over-assigned SKU has no free seat": {
			reason: "more consumed than prepaid units never yields negative capacity",
			skus:   []graph.SubscribedSku{graphSku(orgAcct, skuCopilot, 2, 5)},
			want:   map[string]int{skuCopilot: 0},
		},
		"only self-service accounts": {
			reason: "no organisation seats of the SKU at all",
			skus:   []graph.SubscribedSku{graphSku(selfAcct1, skuCopilot, 3, 1)},
			want:   map[string]int{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, freeOrgSeats(tc.skus, orgAcct)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
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
	cases := map[string]struct {
		reason                string
		created               time.Time
		renewed               *time.Time
		wantFull, wantProrate time.Time
	}{
		"from the purchase": {
			reason:   "full refund within 24 hours of the purchase, prorated within 7 days",
			created:  parseTime("2026-11-25T10:30:00Z"),
			wantFull: parseTime("2026-11-26T10:30:00Z"), wantProrate: parseTime("2026-12-02T10:30:00Z"),
		},
		"from the latest renewal": {
			reason:  "a renewal opens new windows, counted from the renewal",
			created: parseTime("2026-09-01T00:00:00Z"), renewed: refTo(parseTime("2026-11-01T08:00:00Z")),
			wantFull: parseTime("2026-11-02T08:00:00Z"), wantProrate: parseTime("2026-11-08T08:00:00Z"),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			full, prorated := refundWindows(tc.created, tc.renewed)
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
		reason   string
		sub      graph.Subscription
		free     map[string]int
		assigned int
		prev     *v1.SelfServiceSubscription
		want     v1.SelfServiceSubscription
	}{
		"enough free organisation seats": {
			reason: "7 free seats cover the 3 users of a 3-seat purchase",
			sub:    bought, free: map[string]int{skuCopilot: 7}, assigned: 3,
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.FreeOrgSeats, e.TakeoverPossible = 3, 7, true }),
		},
		"too few free organisation seats": {
			reason: "2 free seats cannot take over 3 assigned users",
			sub:    bought, free: map[string]int{skuCopilot: 2}, assigned: 3,
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.FreeOrgSeats = 3, 2 }),
		},
		"seats bought but unassigned need no organisation seat": {
			reason: "a takeover moves users, not seats: one user of three seats needs one free seat",
			sub:    bought, free: map[string]int{skuCopilot: 1}, assigned: 1,
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.FreeOrgSeats, e.TakeoverPossible = 1, 1, true }),
		},
		"SKU IDs match whatever their letter case": {
			reason: "Graph does not promise one letter case across subscriptions and subscribed SKUs",
			sub:    func() graph.Subscription { b := bought; b.SkuID = strings.ToUpper(skuCopilot); return b }(),
			free:   map[string]int{skuCopilot: 5}, assigned: 1,
			want: with(func(e *v1.SelfServiceSubscription) {
				e.SkuID = strings.ToUpper(skuCopilot)
				e.AssignedUsers, e.FreeOrgSeats, e.TakeoverPossible = 1, 5, true
			}),
		},
		"warning carried over within the same window": {
			reason: "the RefundWindowClosing Event is sent once per window, across reconciles",
			sub:    bought, prev: warned, assigned: 1,
			want: with(func(e *v1.SelfServiceSubscription) { e.AssignedUsers, e.RefundWarned = 1, true }),
		},
		"renewal resets the warning": {
			reason: "a renewal opens a new window, which gets its own warning",
			sub:    renewed, prev: staleWarned, assigned: 1,
			want: with(func(e *v1.SelfServiceSubscription) {
				e.AssignedUsers = 1
				e.Created = &metav1.Time{Time: created.AddDate(0, -2, 0)}
				e.LastRenewal = &metav1.Time{Time: created}
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, describeSelfService(tc.sub, tc.free, tc.assigned, tc.prev, now)); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestHandoverVerdict(t *testing.T) {
	paid := v1.SelfServiceSubscription{ID: "erin-copilot", SkuID: skuCopilot, SkuPartNumber: "Microsoft_365_Copilot", BuyerID: "erin-id", Status: "Enabled"}
	trial := paid
	trial.Trial = true
	deleted := &graph.Subscription{ID: "erin-copilot", Status: "Deleted"}
	suspended := &graph.Subscription{ID: "erin-copilot", Status: "Suspended"}
	holding := &graph.User{ID: "erin-id", UserPrincipalName: "erin@contoso.test", AssignedSkuIDs: []string{skuSPB, skuCopilot},
		LicenseStates: []graph.LicenseState{{SkuID: skuSPB}, {SkuID: skuCopilot}}}
	byGroup := &graph.User{ID: "erin-id", AssignedSkuIDs: []string{skuCopilot},
		LicenseStates: []graph.LicenseState{{SkuID: skuCopilot, AssignedByGroup: "copilot-users"}}}
	without := &graph.User{ID: "erin-id", UserPrincipalName: "erin@contoso.test", AssignedSkuIDs: []string{skuSPB}}

	type verdict struct {
		Verdict  v1.HandoverVerdict
		Evidence string
	}
	cases := map[string]struct {
		reason string
		prev   v1.SelfServiceSubscription
		now    *graph.Subscription
		buyer  *graph.User
		want   verdict
	}{
		"takeover: buyer moved to an organisation subscription": {
			reason: "the self-service subscription is gone but its buyer still holds the SKU: an admin took it over",
			prev:   paid, now: deleted, buyer: holding,
			want: verdict{v1.VerdictTakenOver, "self-service subscription now Deleted; buyer erin@contoso.test still holds Microsoft_365_Copilot (assigned directly) from an organisation subscription"},
		},
		"takeover through a group": {
			reason: "group-based assignment is named in the evidence; without a UPN the object ID names the buyer",
			prev:   paid, now: nil, buyer: byGroup,
			want: verdict{v1.VerdictTakenOver, "self-service subscription no longer listed; buyer erin-id still holds Microsoft_365_Copilot (assigned through group copilot-users) from an organisation subscription"},
		},
		"takeover of a trial": {
			reason: "a trial whose buyer keeps the SKU was taken over, not expired",
			prev:   trial, now: deleted, buyer: holding,
			want: verdict{v1.VerdictTakenOver, "self-service subscription now Deleted; buyer erin@contoso.test still holds Microsoft_365_Copilot (assigned directly) from an organisation subscription"},
		},
		"cancellation": {
			reason: "a paid subscription gone and its buyer without the SKU was cancelled",
			prev:   paid, now: deleted, buyer: without,
			want: verdict{v1.VerdictCancelled, "self-service subscription now Deleted; buyer erin@contoso.test no longer holds Microsoft_365_Copilot"},
		},
		"suspension without a licence elsewhere": {
			reason: "a suspended paid subscription no longer serves its buyer: recorded as cancelled with the status as evidence",
			prev:   paid, now: suspended, buyer: without,
			want: verdict{v1.VerdictCancelled, "self-service subscription now Suspended; buyer erin@contoso.test no longer holds Microsoft_365_Copilot"},
		},
		"trial expiry": {
			reason: "a trial gone and its buyer without the SKU ended",
			prev:   trial, now: deleted, buyer: without,
			want: verdict{v1.VerdictExpired, "trial now Deleted; buyer no longer holds Microsoft_365_Copilot"},
		},
		"buyer gone": {
			reason: "a buyer deleted from the directory cannot have been moved anywhere",
			prev:   paid, now: nil, buyer: nil,
			want: verdict{v1.VerdictCancelled, "self-service subscription no longer listed; buyer no longer exists in the directory"},
		},
		"trial buyer gone": {
			reason: "a trial is still an expiry when its buyer left",
			prev:   trial, now: deleted, buyer: nil,
			want: verdict{v1.VerdictExpired, "trial now Deleted; buyer no longer holds Microsoft_365_Copilot"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, evidence := handoverVerdict(tc.prev, tc.now, tc.buyer)
			if diff := cmp.Diff(tc.want, verdict{v, evidence}); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
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
