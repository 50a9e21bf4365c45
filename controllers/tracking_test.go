package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// fakeDirectory is a TenantDirectory over fixed lists. GetSubscription finds
// a subscription in byID, then in subs, else answers 404 (or fails with
// getErr); GetUser finds users, else answers 404. It counts the reads by id.
type fakeDirectory struct {
	subs      []graph.Subscription
	skus      []graph.SubscribedSku
	byID      map[string]graph.Subscription
	getErr    error
	users     map[string]graph.User
	userReads int
	subReads  int
}

func (f *fakeDirectory) ListSubscriptions(context.Context) ([]graph.Subscription, m365.ListInfo, error) {
	return f.subs, m365.ListInfo{}, nil
}

func (f *fakeDirectory) ListSubscribedSkus(context.Context) ([]graph.SubscribedSku, m365.ListInfo, error) {
	return f.skus, m365.ListInfo{}, nil
}

func (f *fakeDirectory) GetSubscription(_ context.Context, id string) (graph.Subscription, error) {
	f.subReads++
	if f.getErr != nil {
		return graph.Subscription{}, f.getErr
	}
	if s, ok := f.byID[id]; ok {
		return s, nil
	}
	for _, s := range f.subs {
		if s.ID == id {
			return s, nil
		}
	}
	return graph.Subscription{}, &m365.Error{Op: "get subscription", Kind: m365.NotFound, StatusCode: 404}
}

func (f *fakeDirectory) GetUser(_ context.Context, id string) (graph.User, error) {
	f.userReads++
	if u, ok := f.users[id]; ok {
		return u, nil
	}
	return graph.User{}, &m365.Error{Op: "get user", Kind: m365.NotFound, StatusCode: 404}
}

func TestTrackingKeepsAnActiveSubscriptionMissingFromSubscribedSkus(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	sub := graph.Subscription{ID: "erin-sub", SkuID: "sku", SkuPartNumber: "Microsoft_365_Copilot", Status: "Enabled",
		OwnerType: "User", OwnerID: "erin", TotalLicenses: 1, Created: now.Add(-time.Hour)}
	dir := &fakeDirectory{
		subs: []graph.Subscription{sub, {ID: "org-sub", SkuID: "sku", Status: "Enabled", OwnerType: "Company", TotalLicenses: 10}},
		// subscribedSkus lags: it does not list erin's subscription yet.
		skus: []graph.SubscribedSku{{SkuID: "sku", AccountID: "org", Enabled: 10, Consumed: 3, SubscriptionIDs: []string{"org-sub"}}},
	}
	r := &TenantPurchasePolicyReconciler{}
	p := &v1.TenantPurchasePolicy{}
	p.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{{ID: "erin-sub", BuyerID: "erin", SkuID: "sku", Status: "Enabled"}}}
	s := &syncState{policy: p, base: p.DeepCopy(), now: now, directory: dir}

	if err := r.trackSubscriptions(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := p.Status.Subscriptions
	if len(got.Handovers) != 0 || p.Status.Counters.Takeovers+p.Status.Counters.Cancellations != 0 {
		t.Errorf("a subscription still Enabled in Graph did not leave its buyer, got handovers %+v", got.Handovers)
	}
	if dir.userReads != 0 {
		t.Errorf("no user read without a change of hands, got %d", dir.userReads)
	}
	if len(got.SelfService) != 1 || got.SelfService[0].ID != "erin-sub" {
		t.Errorf("the entry is kept for the next run to decide, got %+v", got.SelfService)
	}
}

// tenantView is one run's answer of Graph for the tracking scenarios: the
// organisation's billing account holds a 10-seat Copilot (3 seats in use)
// and a 25-seat Business Premium, both admin-bought with ownerType User;
// erin bought one Copilot seat from her own account and holds it.
type tenantView struct {
	erinStatus   string // "" = erin's subscription is not listed
	erinInUse    int    // seats of erin's account in use
	orgInUse     int    // the organisation's Copilot seats in use
	erinHolds    bool   // erin is licensed for Copilot
	listOrg      bool   // the organisation's subscriptions are listed
	listSkus     bool   // subscribedSkus answers its entries
	byID         string // status GET /directory/subscriptions/erin-sub finds; "" = 404
	getErr       error
	erinDeparted bool // erin was deleted from the directory
}

const erinSub, erinID = "erin-sub", "erin-id"

func (v tenantView) directory() *fakeDirectory {
	created := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	erin := graph.Subscription{ID: erinSub, SkuID: skuCopilot, SkuPartNumber: "Microsoft_365_Copilot", OwnerType: "User",
		OwnerID: erinID, TotalLicenses: 1, Created: created}
	d := &fakeDirectory{byID: map[string]graph.Subscription{}, getErr: v.getErr, users: map[string]graph.User{}}
	if v.listOrg {
		d.subs = append(d.subs, graphSub("org-copilot", skuCopilot, "User", 10), graphSub("org-spb", skuSPB, "User", 25))
	}
	if v.erinStatus != "" {
		erin.Status = v.erinStatus
		d.subs = append(d.subs, erin)
	}
	if v.byID != "" {
		erin.Status = v.byID
		d.byID[erinSub] = erin
	}
	if v.listSkus {
		erinSku := graph.SubscribedSku{AccountID: selfAcct1, SkuID: skuCopilot, Consumed: v.erinInUse, SubscriptionIDs: []string{erinSub}}
		switch v.erinStatus {
		case "Warning":
			erinSku.Warning = 1
		case "Suspended":
			erinSku.Suspended = 1
		case "Enabled":
			erinSku.Enabled = 1
		}
		d.skus = []graph.SubscribedSku{graphSku(orgAcct, skuCopilot, 10, v.orgInUse, "org-copilot"), graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), erinSku}
	}
	if !v.erinDeparted {
		u := graph.User{ID: erinID, UserPrincipalName: "erin@contoso.test", AssignedSkuIDs: []string{skuSPB}}
		if v.erinHolds {
			u.AssignedSkuIDs = append(u.AssignedSkuIDs, skuCopilot)
		}
		d.users[erinID] = u
	}
	return d
}

// steady is the tenant as bought: every list complete, erin's seat in use.
var steady = tenantView{erinStatus: "Enabled", erinInUse: 1, orgInUse: 3, erinHolds: true, listOrg: true, listSkus: true}

func with(v tenantView, f func(*tenantView)) tenantView { f(&v); return v }

// trackingRun is what one run of trackSubscriptions left behind.
type trackingRun struct {
	Verdicts  []string // handover records, newest first: "id verdict"
	Counters  v1.Counters
	Events    []string // reasons queued this run
	Status    string   // erin's entry's status, "" when gone from status
	UserReads int
	SubReads  int
	Degraded  bool
}

func runTracking(t *testing.T, p *v1.TenantPurchasePolicy, v tenantView, now time.Time) trackingRun {
	t.Helper()
	dir := v.directory()
	s := &syncState{policy: p, base: p.DeepCopy(), now: now, directory: dir}
	if err := (&TenantPurchasePolicyReconciler{}).trackSubscriptions(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	run := trackingRun{Counters: p.Status.Counters, UserReads: dir.userReads, SubReads: dir.subReads,
		Degraded: s.tracking != nil && s.tracking.err != nil}
	for _, h := range p.Status.Subscriptions.Handovers {
		run.Verdicts = append(run.Verdicts, h.SubscriptionID+" "+string(h.Verdict))
	}
	for _, e := range s.events {
		run.Events = append(run.Events, e.reason)
	}
	for _, a := range s.announcements {
		run.Events = append(run.Events, a.reason)
	}
	for _, e := range p.Status.Subscriptions.SelfService {
		if e.ID == erinSub {
			run.Status = e.Status
		}
	}
	return run
}

// TestTrackingNeedsEvidence runs tracking over a sequence of Graph answers
// after a first run that recorded erin's purchase, and checks what each run
// recorded. A handover is recorded once, and only when Graph shows it:
// absence from one answer, or a failed payment, is not a takeover.
func TestTrackingNeedsEvidence(t *testing.T) {
	none := trackingRun{Status: "Enabled"}
	takenOver := v1.Counters{Takeovers: 1}
	cancelled := v1.Counters{Cancellations: 1}
	unavailable := &m365.Error{Op: "get subscription", Kind: m365.Transient, StatusCode: 503}
	type step struct {
		view tenantView
		want trackingRun
	}
	cases := map[string]struct {
		reason string
		// setup changes the status the first run left, if set.
		setup func(p *v1.TenantPurchasePolicy)
		steps []step
	}{
		"empty page": {
			reason: `Graph answered {"value":[]}: erin's subscription is read by id, found Enabled, and kept; the next complete list announces nothing again`,
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.listOrg, v.byID = "", false, "Enabled" }), trackingRun{Status: "Enabled", SubReads: 1}},
				{steady, none},
			},
		},
		"empty page of subscriptions and of SKUs": {
			reason: "both lists empty during an incident: still no evidence of anything",
			steps: []step{
				{tenantView{byID: "Enabled", erinHolds: true}, trackingRun{Status: "Enabled", SubReads: 1}},
				{steady, none},
			},
		},
		"short page": {
			reason: "the list arrived without erin's subscription, which still exists",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.byID = "", "Enabled" }), trackingRun{Status: "Enabled", SubReads: 1}},
				{steady, none},
			},
		},
		"short page, subscription unreadable by id": {
			reason: "the confirming read failed: nothing is recorded and tracking is degraded",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.getErr = "", unavailable }), trackingRun{Status: "Enabled", SubReads: 1, Degraded: true}},
				{steady, none},
			},
		},
		"empty page while Graph throttles reads by id": {
			reason: "the first read by id fails: the other vanished subscriptions are kept as they were without asking Graph again",
			setup: func(p *v1.TenantPurchasePolicy) {
				p.Status.Subscriptions.SelfService = append(p.Status.Subscriptions.SelfService,
					v1.SelfServiceSubscription{ID: "frank-sub", BuyerID: "frank-id", SkuID: skuCopilot, Status: "Enabled", AssignedUsers: 1})
			},
			steps: []step{
				{tenantView{getErr: unavailable, erinHolds: true}, trackingRun{Status: "Enabled", SubReads: 1, Degraded: true}},
			},
		},
		"failed card: Suspended with the seat in use": {
			reason: "an unpaid subscription is Suspended, its user keeps the licence: not a handover, shown with its status",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus = "Suspended" }), trackingRun{Status: "Suspended"}},
				{steady, none},
			},
		},
		"failed card: Warning with the seat in use": {
			reason: "Warning is the grace period of an unpaid subscription",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus = "Warning" }), trackingRun{Status: "Warning"}},
			},
		},
		"takeover: users moved, subscription Deleted": {
			reason: "erin's account no longer uses its seat, erin holds Copilot and the organisation's seats in use rose: a takeover, recorded once",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "Deleted", 0, 4 }),
					trackingRun{Status: "Deleted", UserReads: 1, Verdicts: []string{"erin-sub TakenOver"}, Counters: takenOver, Events: []string{v1.EventTakeoverDetected}}},
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "Deleted", 0, 4 }),
					trackingRun{Status: "Deleted", Verdicts: []string{"erin-sub TakenOver"}, Counters: takenOver}},
			},
		},
		"takeover: users moved, subscription cancelled (Warning)": {
			reason: "Microsoft cancels a taken-over subscription through Warning: the move of its users is the evidence, at once",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "Warning", 0, 4 }),
					trackingRun{Status: "Warning", UserReads: 1, Verdicts: []string{"erin-sub TakenOver"}, Counters: takenOver, Events: []string{v1.EventTakeoverDetected}}},
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "Suspended", 0, 4 }),
					trackingRun{Status: "Suspended", Verdicts: []string{"erin-sub TakenOver"}, Counters: takenOver}},
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "", 0, 4 }),
					trackingRun{Status: "Suspended", Verdicts: []string{"erin-sub TakenOver"}, Counters: takenOver}},
			},
		},
		"cancellation through Warning, Suspended, Deleted": {
			reason: "erin keeps her licence while the cancelled subscription is Warning and Suspended; when Deleted she no longer holds Copilot: cancelled, once",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus = "Warning" }), trackingRun{Status: "Warning"}},
				{with(steady, func(v *tenantView) { v.erinStatus = "Suspended" }), trackingRun{Status: "Suspended"}},
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.erinHolds = "Deleted", 0, false }),
					trackingRun{Status: "Deleted", UserReads: 1, Verdicts: []string{"erin-sub Cancelled"}, Counters: cancelled, Events: []string{v1.EventCancellationDetected}}},
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinHolds = "", false }),
					trackingRun{Status: "Deleted", Verdicts: []string{"erin-sub Cancelled"}, Counters: cancelled}},
			},
		},
		"gone: 404 by id": {
			reason: "a subscription missing from the list that answers 404 by id is gone; erin holds no Copilot: cancelled",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.erinHolds = "", 0, false }),
					trackingRun{Status: "Deleted", SubReads: 1, UserReads: 1, Verdicts: []string{"erin-sub Cancelled"}, Counters: cancelled, Events: []string{v1.EventCancellationDetected}}},
			},
		},
		"gone while the buyer holds the SKU from elsewhere": {
			reason: "Deleted, erin still licensed, but no organisation seat was assigned: no evidence of a takeover",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse = "Deleted", 0 }),
					trackingRun{Status: "Deleted", UserReads: 1, Verdicts: []string{"erin-sub Cancelled"}, Counters: cancelled, Events: []string{v1.EventCancellationDetected}}},
			},
		},
		"buyer left the directory": {
			reason: "a deleted buyer cannot have been moved anywhere",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.erinDeparted = "Deleted", 0, true }),
					trackingRun{Status: "Deleted", UserReads: 1, Verdicts: []string{"erin-sub Cancelled"}, Counters: cancelled, Events: []string{v1.EventCancellationDetected}}},
			},
		},
		"seat unassigned, subscription still Enabled": {
			reason: "erin gave up her seat but the subscription goes on, and no organisation seat covers her: nothing left her hands yet, and she is read once, not at every run",
			steps: []step{
				{with(steady, func(v *tenantView) { v.erinInUse, v.erinHolds = 0, false }), trackingRun{Status: "Enabled", UserReads: 1}},
				{with(steady, func(v *tenantView) { v.erinInUse, v.erinHolds = 0, false }), trackingRun{Status: "Enabled"}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
			p := &v1.TenantPurchasePolicy{}
			if first := runTracking(t, p, steady, now); !cmp.Equal(first.Events, []string{v1.EventSelfServicePurchase}) {
				t.Fatalf("first run: want the purchase announced, got %v", first.Events)
			}
			if tc.setup != nil {
				tc.setup(p)
			}
			for i, st := range tc.steps {
				now = now.Add(15 * time.Minute)
				got := runTracking(t, p, st.view, now)
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Errorf("%s\nrun %d (-want +got):\n%s", tc.reason, i+1, diff)
				}
			}
		})
	}
}

// TestTrackingEvidenceIsShown checks the handover records say what Graph
// showed.
func TestTrackingEvidenceIsShown(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	p := &v1.TenantPurchasePolicy{}
	runTracking(t, p, steady, now)
	runTracking(t, p, with(steady, func(v *tenantView) { v.erinStatus, v.erinInUse, v.orgInUse = "Warning", 0, 4 }), now.Add(time.Hour))
	h := p.Status.Subscriptions.Handovers[0]
	for _, want := range []string{"erin@contoso.test", "Microsoft_365_Copilot", "3 to 4", "now Warning"} {
		if !strings.Contains(h.Evidence, want) {
			t.Errorf("evidence %q does not mention %q", h.Evidence, want)
		}
	}
	if len(h.Evidence) > 512 {
		t.Errorf("evidence is %d characters, the CRD allows 512", len(h.Evidence))
	}
	t.Log(h.Evidence)
}
