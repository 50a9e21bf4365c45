package m365sim

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestOrganizationTrialIsTheLoophole: with every product Disabled, a user
// still gets a Power BI Pro trial on behalf of the organisation until the
// tenant-wide setting is turned off.
func TestOrganizationTrialIsTheLoophole(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.SetPolicy(f.tenant, "CFQ7TTC0H9MP", PolicyDisabled); err != nil {
		t.Fatal(err)
	}
	buy := PurchaseRequest{UserPrincipalName: "megan@contoso.example", SkuPartNumber: SkuPowerBIPro}
	if _, err := f.sim.Purchase(f.tenant, buy); !errors.Is(err, ErrPurchaseBlocked) {
		t.Fatalf("self-service purchase of a Disabled product: want ErrPurchaseBlocked, got %v", err)
	}
	buy.Path = PathOrganizationTrial
	sub, err := f.sim.Purchase(f.tenant, buy)
	if err != nil {
		t.Fatalf("organisation trial while the product is Disabled: %v", err)
	}
	if !sub.IsTrial || !sub.SelfService || sub.AcquisitionPath != PathOrganizationTrial || !strings.HasSuffix(sub.AccountName, "(trial on behalf of the organisation)") {
		t.Errorf("organisation trial subscription: %+v", sub)
	}
	r := f.do(t, "GET", f.graph("/v1.0/directory/subscriptions/"+sub.ID), f.graphToken(t), nil, nil).json(t)
	if r["isTrial"] != true || r["ownerType"] != "User" || r["skuPartNumber"] != SkuPowerBIPro {
		t.Errorf("Graph shows the trial as: %v", r)
	}
	off := false
	if _, err := f.sim.UpdateSettings(f.tenant, TenantSettingsUpdate{IsAppAndServicesTrialEnabled: &off}); err != nil {
		t.Fatal(err)
	}
	buy.UserPrincipalName = "nestor@contoso.example"
	_, err = f.sim.Purchase(f.tenant, buy)
	if !errors.Is(err, ErrPurchaseBlocked) || !strings.Contains(err.Error(), "isAppAndServicesTrialEnabled is false") {
		t.Errorf("organisation trial after the setting is off: %v", err)
	}
	admin := f.do(t, "POST", f.admin("/purchases"), "", map[string]any{"skuPartNumber": SkuPowerBIPro, "path": PathOrganizationTrial}, nil)
	if admin.status != http.StatusForbidden || !strings.Contains(admin.json(t)["error"].(string), "trials on behalf of the organisation") {
		t.Errorf("admin API refusal: %d %s", admin.status, admin.body)
	}
}

func TestAcquisitionPathsFollowTheirSetting(t *testing.T) {
	member := "alice@contoso.onmicrosoft.com" // in the sample directory
	cases := []struct {
		name    string
		update  TenantSettingsUpdate
		req     PurchaseRequest
		blocked string // "" = allowed
	}{
		{"email sign-up allowed", TenantSettingsUpdate{}, PurchaseRequest{Path: PathEmailSignup, UserPrincipalName: "new@x.example"}, ""},
		{"email sign-up off", TenantSettingsUpdate{AllowedToSignUpEmailBasedSubscriptions: ptr(false)},
			PurchaseRequest{Path: PathEmailSignup, UserPrincipalName: member}, "allowedToSignUpEmailBasedSubscriptions is false"},
		{"email-verified join off, new user", TenantSettingsUpdate{AllowEmailVerifiedUsersToJoinOrganization: ptr(false)},
			PurchaseRequest{Path: PathEmailSignup, UserPrincipalName: "new@x.example"}, "allowEmailVerifiedUsersToJoinOrganization is false"},
		{"email-verified join off, member", TenantSettingsUpdate{AllowEmailVerifiedUsersToJoinOrganization: ptr(false)},
			PurchaseRequest{Path: PathEmailSignup, UserPrincipalName: member}, ""},
		{"Office Store allowed", TenantSettingsUpdate{}, PurchaseRequest{Path: PathOfficeStore, UserPrincipalName: member}, ""},
		{"Office Store off", TenantSettingsUpdate{IsOfficeStoreEnabled: ptr(false)},
			PurchaseRequest{Path: PathOfficeStore, UserPrincipalName: member}, "isOfficeStoreEnabled is false"},
		{"Office Store off, ignorePolicy", TenantSettingsUpdate{IsOfficeStoreEnabled: ptr(false)},
			PurchaseRequest{Path: PathOfficeStore, UserPrincipalName: member, IgnorePolicy: true}, ""},
		{"settings do not open the self-service path", TenantSettingsUpdate{},
			PurchaseRequest{UserPrincipalName: member}, "CFQ7TTC0H9MP is Disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			_ = f.sim.SetPolicy(f.tenant, "CFQ7TTC0H9MP", PolicyDisabled) // the product policy binds only the self-service path
			if _, err := f.sim.UpdateSettings(f.tenant, tc.update); err != nil {
				t.Fatal(err)
			}
			tc.req.SkuPartNumber = SkuPowerBIPro
			sub, err := f.sim.Purchase(f.tenant, tc.req)
			switch {
			case tc.blocked == "" && err != nil:
				t.Fatalf("want allowed, got %v", err)
			case tc.blocked != "" && (!errors.Is(err, ErrPurchaseBlocked) || !strings.Contains(err.Error(), tc.blocked)):
				t.Fatalf("want blocked by %q, got %v", tc.blocked, err)
			case tc.blocked == "" && sub.AcquisitionPath != tc.req.Path:
				t.Errorf("acquisition path %q, want %q", sub.AcquisitionPath, tc.req.Path)
			}
			if tc.blocked == "" && tc.req.Path == PathEmailSignup && !sub.IsTrial {
				t.Error("an email-based sign-up is a trial")
			}
		})
	}
	f := newFixture(t, nil)
	if _, err := f.sim.Purchase(f.tenant, PurchaseRequest{SkuPartNumber: SkuCopilot, Path: "backdoor"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown path: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
