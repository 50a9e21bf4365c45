package m365sim

import (
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// listAll follows @odata.nextLink and returns every item and the page count.
func (f *fixture) listAll(t *testing.T, tok, path string) ([]map[string]any, int) {
	t.Helper()
	var items []map[string]any
	pages := 0
	for u := f.graph(path); u != ""; pages++ {
		r := f.do(t, "GET", u, tok, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, r.status, r.body)
		}
		m := r.json(t)
		for _, v := range m["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		u, _ = m["@odata.nextLink"].(string)
		if u != "" && !strings.HasPrefix(u, f.sim.Endpoints().Graph+"/v1.0/") {
			t.Fatalf("nextLink %q is not on the graph origin", u)
		}
	}
	return items, pages
}

func TestGraphPaging(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.PageSize = 2 })
	for _, upn := range []string{"eve@x", "frank@x", "grace@x"} {
		if _, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: upn, SkuPartNumber: SkuCopilot}); err != nil {
			t.Fatal(err)
		}
	}
	tok := f.graphToken(t)
	items, pages := f.listAll(t, tok, "/v1.0/directory/subscriptions")
	var got []string
	for _, it := range items {
		got = append(got, it["id"].(string))
	}
	subs, _ := f.sim.Subscriptions(f.tenant)
	var want []string
	for _, s := range subs {
		want = append(want, s.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" || pages != 3 {
		t.Errorf("5 subscriptions in pages of 2: %d pages, ids (-want +got):\n%s", pages, diff)
	}
	users, pages := f.listAll(t, tok, "/v1.0/users?$select=id,userPrincipalName")
	if len(users) != 8 || pages != 4 || len(users[0]) != 2 {
		t.Errorf("users: %d in %d pages, first %v", len(users), pages, users[0])
	}
	log := f.sim.Requests(f.tenant)
	if log.Counts["graph GET users-list"] != 4 || log.Counts["graph GET subscriptions"] != 3 || log.Counts["graph GET"] != 7 {
		t.Errorf("counts: %v", log.Counts)
	}
}

func TestGraphUserSelectAndErrors(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: "eve@contoso.onmicrosoft.com", SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", f.graph("/v1.0/users/"+sub.OwnerID+"?$select=id,userPrincipalName,assignedLicenses,licenseAssignmentStates"), tok, nil, nil)
	got := r.json(t)
	delete(got, "@odata.context")
	copilot, _ := LookupSKU(SkuCopilot)
	want := map[string]any{
		"id": sub.OwnerID, "userPrincipalName": "eve@contoso.onmicrosoft.com",
		"assignedLicenses":        []any{map[string]any{"skuId": copilot.SkuID, "disabledPlans": []any{}}},
		"licenseAssignmentStates": []any{map[string]any{"skuId": copilot.SkuID, "assignedByGroup": nil, "state": "Active", "error": "None", "disabledPlans": []any{}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("user with $select (-want +got):\n%s", diff)
	}
	plain := f.do(t, "GET", f.graph("/v1.0/users/eve@contoso.onmicrosoft.com"), tok, nil, nil).json(t)
	if _, ok := plain["assignedLicenses"]; ok || plain["id"] != sub.OwnerID {
		t.Errorf("without $select: default properties only, by UPN: %v", plain)
	}
	missing := f.do(t, "GET", f.graph("/v1.0/users/00000000-0000-0000-0000-000000000000"), tok, nil, nil)
	if missing.status != 404 || missing.json(t)["error"].(map[string]any)["code"] != "Request_ResourceNotFound" {
		t.Errorf("unknown user: %d %s", missing.status, missing.body)
	}
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "lic-only", Secret: "lic-secret", Permissions: []string{PermPolicyRead}}); err != nil {
		t.Fatal(err)
	}
	weak := f.token(t, "lic-only", "lic-secret", ResourceGraph+"/.default")
	for _, p := range []string{"/v1.0/directory/subscriptions", "/v1.0/subscribedSkus", "/v1.0/users/" + sub.OwnerID} {
		r := f.do(t, "GET", f.graph(p), weak, nil, nil)
		e, _ := r.json(t)["error"].(map[string]any)
		if r.status != 403 || e["code"] != "Authorization_RequestDenied" || e["message"] != "Insufficient privileges to complete the operation." {
			t.Errorf("%s without permission: %d %s", p, r.status, r.body)
		}
	}
	if r := f.do(t, "GET", f.graph("/v1.0/subscribedSkus"), f.licensingToken(t), nil, nil); r.status != 401 {
		t.Errorf("licensing token on Graph: want 401, got %d", r.status)
	}
}

// skuView is the subscribedSkus entry a test compares.
type skuView struct {
	Part               string
	Account            string
	Enabled, Consumed  float64
	Capability         string
	SubscriptionsCount int
}

func (f *fixture) skus(t *testing.T) []skuView {
	t.Helper()
	items, _ := f.listAll(t, f.graphToken(t), "/v1.0/subscribedSkus")
	info, _ := f.sim.Tenant(f.tenant)
	var out []skuView
	for _, it := range items {
		acct := "self-service"
		if it["accountId"] == info.OrgAccountID {
			acct = "org"
		}
		out = append(out, skuView{Part: it["skuPartNumber"].(string), Account: acct,
			Enabled: it["prepaidUnits"].(map[string]any)["enabled"].(float64), Consumed: it["consumedUnits"].(float64),
			Capability: it["capabilityStatus"].(string), SubscriptionsCount: len(it["subscriptionIds"].([]any))})
	}
	return out
}

func (f *fixture) userSkus(t *testing.T, userID string) []string {
	t.Helper()
	r := f.do(t, "GET", f.graph("/v1.0/users/"+userID+"?$select=assignedLicenses"), f.graphToken(t), nil, nil)
	var out []string
	for _, l := range r.json(t)["assignedLicenses"].([]any) {
		k, _ := LookupSKU(l.(map[string]any)["skuId"].(string))
		out = append(out, k.SkuPartNumber)
	}
	sort.Strings(out)
	return out
}

func TestSubscriptionLifecycle(t *testing.T) {
	f := newFixture(t, nil)
	orgCopilot := skuView{SkuCopilot, "org", 10, 3, "Enabled", 1}
	spb := skuView{SkuBusinessPremium, "org", 25, 5, "Enabled", 1}
	if diff := cmp.Diff([]skuView{spb, orgCopilot}, f.skus(t)); diff != "" {
		t.Fatalf("sample directory (-want +got):\n%s", diff)
	}
	sub, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: "eve@contoso.onmicrosoft.com", SkuPartNumber: SkuCopilot})
	if err != nil {
		t.Fatal(err)
	}
	created := f.clock.Now()
	wantSub := struct {
		OwnerType, Status, Account string
		Next                       time.Time
		Users                      int
	}{"User", "Enabled", "eve@contoso.onmicrosoft.com (self-service)", created.AddDate(0, 1, 0), 1}
	gotSub := wantSub
	gotSub.OwnerType, gotSub.Status, gotSub.Account, gotSub.Next, gotSub.Users = sub.OwnerType, sub.Status, sub.AccountName, sub.NextLifecycleDateTime, len(sub.AssignedUsers)
	if diff := cmp.Diff(wantSub, gotSub); diff != "" {
		t.Errorf("purchase (-want +got):\n%s", diff)
	}
	ss := skuView{SkuCopilot, "self-service", 1, 1, "Enabled", 1}
	if diff := cmp.Diff([]skuView{spb, orgCopilot, ss}, f.skus(t)); diff != "" {
		t.Errorf("after purchase (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{SkuCopilot}, f.userSkus(t, sub.OwnerID)); diff != "" {
		t.Errorf("buyer licences (-want +got):\n%s", diff)
	}

	f.clock.Advance(20 * 24 * time.Hour)
	renewed, err := f.sim.Renew(f.tenant, sub.ID)
	if err != nil || !renewed.NextLifecycleDateTime.Equal(f.clock.Now().AddDate(0, 1, 0)) || !renewed.LastRenewalDateTime.Equal(f.clock.Now()) {
		t.Errorf("renew: %+v %v", renewed, err)
	}

	taken, err := f.sim.TakeOver(f.tenant, sub.ID)
	if err != nil || taken.Status != StatusWarning || len(taken.AssignedUsers) != 0 {
		t.Fatalf("takeover: users moved, then the cancellation starts with Warning: %+v %v", taken, err)
	}
	if diff := cmp.Diff([]skuView{spb, {SkuCopilot, "org", 10, 4, "Enabled", 1}, {SkuCopilot, "self-service", 0, 0, "Warning", 1}}, f.skus(t)); diff != "" {
		t.Errorf("after takeover the buyer uses an org seat (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{SkuCopilot}, f.userSkus(t, sub.OwnerID)); diff != "" {
		t.Errorf("buyer keeps Copilot through the org subscription (-want +got):\n%s", diff)
	}
	if ended, err := f.sim.AdvanceSubscription(f.tenant, sub.ID, StatusDeleted); err != nil || ended.Status != StatusDeleted {
		t.Fatalf("advance to Deleted: %+v %v", ended, err)
	}
	if diff := cmp.Diff([]skuView{spb, {SkuCopilot, "org", 10, 4, "Enabled", 1}, {SkuCopilot, "self-service", 0, 0, "Deleted", 1}}, f.skus(t)); diff != "" {
		t.Errorf("after the lifecycle (-want +got):\n%s", diff)
	}
	if _, err := f.sim.TakeOver(f.tenant, sub.ID); !errors.Is(err, ErrSubscriptionDeleted) {
		t.Errorf("second takeover: %v", err)
	}

	pbi, err := f.sim.Purchase(f.tenant, PurchaseRequest{UserPrincipalName: "frank@contoso.onmicrosoft.com", SkuPartNumber: SkuPowerBIPro, Trial: true})
	if err != nil || !pbi.IsTrial {
		t.Fatalf("trial purchase: %+v %v", pbi, err)
	}
	if _, err := f.sim.TakeOver(f.tenant, pbi.ID); !errors.Is(err, ErrNotEnoughSeats) {
		t.Errorf("takeover without an org Power BI subscription: want ErrNotEnoughSeats, got %v", err)
	}
	if after, _ := f.sim.Subscriptions(f.tenant); after[len(after)-1].Status != StatusEnabled || len(after[len(after)-1].AssignedUsers) != 1 {
		t.Errorf("a refused takeover must change nothing: %+v", after[len(after)-1])
	}
	if _, err := f.sim.Cancel(f.tenant, pbi.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.userSkus(t, pbi.OwnerID); len(got) != 1 {
		t.Errorf("a cancelled subscription keeps its users licensed while it is Warning: %v", got)
	}
	f.clock.Advance(DefaultWarningPeriod + DefaultSuspendedPeriod)
	if got := f.userSkus(t, pbi.OwnerID); len(got) != 0 {
		t.Errorf("once the cancelled subscription is Deleted the buyer has no licence: %v", got)
	}
}

func TestPurchaseFollowsPolicy(t *testing.T) {
	f := newFixture(t, nil)
	cases := map[string]struct {
		policy string
		trial  bool
		want   error
	}{
		"enabled buys":       {PolicyEnabled, false, nil},
		"disabled refuses":   {PolicyDisabled, true, ErrPurchaseBlocked},
		"trials only, buy":   {PolicyTrialsOnly, false, ErrPurchaseBlocked},
		"trials only, trial": {PolicyTrialsOnly, true, nil},
	}
	for name, tc := range cases {
		if err := f.sim.SetPolicy(f.tenant, "CFQ7TTC0MM8R", tc.policy); err != nil {
			t.Fatal(err)
		}
		_, err := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot, Trial: tc.trial})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

func TestDeterministicIDs(t *testing.T) {
	ids := func() []string {
		s, err := New(Options{Seed: 42})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := s.AddTenant(TenantConfig{WithSampleDirectory: true})
		b, _ := s.AddTenant(TenantConfig{})
		subs, _ := s.Subscriptions(a.ID)
		return []string{a.ID, b.ID, subs[0].ID}
	}
	if first, second := ids(), ids(); !cmp.Equal(first, second) {
		t.Errorf("same seed, different IDs: %v %v", first, second)
	}
}
