package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const tenantA = "aaaaaaaa-1111-4000-8000-000000000001"

func rule(id string, p v1.RulePolicy) v1.ProductRule { return v1.ProductRule{ProductID: id, Policy: p} }

func TestTenantSpec(t *testing.T) {
	tpl := v1.TenantPurchasePolicyTemplate{
		Auth:           v1.Auth{ClientID: "11111111-2222-3333-4444-555555555555", ClientSecretRef: &v1.SecretKeyRef{Name: "partner", Key: "secret"}},
		Mode:           v1.ModeEnforce,
		Default:        v1.RulePolicy(v1.PolicyDisabled),
		Products:       []v1.ProductRule{rule("CFQ7TTC0MM8R", v1.RulePolicy(v1.PolicyOnlyTrials)), rule("CFQ7TTC0H9MP", v1.RulePolicy(v1.PolicyDisabled))},
		OfferTypes:     []v1.OfferTypeRule{{OfferType: "SaaS", Policy: v1.PolicyDisabled}},
		Interval:       metav1.Duration{Duration: 15 * time.Minute},
		DeletionPolicy: v1.DeletionRestore,
		Subscriptions:  v1.SubscriptionTracking{Track: ptr.To(true), RefundWarning: &metav1.Duration{Duration: 4 * time.Hour}},
	}
	with := func(edit func(*v1.TenantPurchasePolicyTemplate)) v1.TenantPurchasePolicySpec {
		s := v1.TenantPurchasePolicySpec{TenantID: tenantA, TenantPurchasePolicyTemplate: *tpl.DeepCopy()}
		edit(&s.TenantPurchasePolicyTemplate)
		return s
	}
	cases := map[string]struct {
		overrides *v1.PolicyOverrides
		want      v1.TenantPurchasePolicySpec
	}{
		"no overrides: the template with the tenant": {
			want: with(func(*v1.TenantPurchasePolicyTemplate) {}),
		},
		"mode, default and suspend replace the template's": {
			overrides: &v1.PolicyOverrides{Mode: ptr.To(v1.ModeObserve), Default: ptr.To(v1.RuleUnmanaged), Suspend: ptr.To(true)},
			want: with(func(t *v1.TenantPurchasePolicyTemplate) {
				t.Mode, t.Default, t.Suspend = v1.ModeObserve, v1.RuleUnmanaged, true
			}),
		},
		"a product rule replaces the template's in place, a new one comes after": {
			overrides: &v1.PolicyOverrides{Products: []v1.ProductRule{rule("CFQ7TTC0J1FV", v1.RulePolicy(v1.PolicyEnabled)), rule("CFQ7TTC0MM8R", v1.RuleUnmanaged)}},
			want: with(func(t *v1.TenantPurchasePolicyTemplate) {
				t.Products = []v1.ProductRule{rule("CFQ7TTC0MM8R", v1.RuleUnmanaged), rule("CFQ7TTC0H9MP", v1.RulePolicy(v1.PolicyDisabled)), rule("CFQ7TTC0J1FV", v1.RulePolicy(v1.PolicyEnabled))}
			}),
		},
		"offer types merge by offer type": {
			overrides: &v1.PolicyOverrides{OfferTypes: []v1.OfferTypeRule{{OfferType: "DYNAMICSBC", Policy: v1.PolicyEnabled}, {OfferType: "SaaS", Policy: v1.PolicyEnabled}}},
			want: with(func(t *v1.TenantPurchasePolicyTemplate) {
				t.OfferTypes = []v1.OfferTypeRule{{OfferType: "SaaS", Policy: v1.PolicyEnabled}, {OfferType: "DYNAMICSBC", Policy: v1.PolicyEnabled}}
			}),
		},
		"tenant settings merge field by field": {
			overrides: &v1.PolicyOverrides{TenantSettings: &v1.TenantSettingsOverrides{OfficeStore: v1.SettingDisabled}},
			want: with(func(t *v1.TenantPurchasePolicyTemplate) {
				t.TenantSettings = &v1.TenantSettings{OfficeStore: v1.SettingDisabled}
			}),
		},
		"subscriptions replace the template's as a whole": {
			overrides: &v1.PolicyOverrides{Subscriptions: &v1.SubscriptionTracking{Track: ptr.To(false)}},
			want: with(func(t *v1.TenantPurchasePolicyTemplate) {
				t.Subscriptions = v1.SubscriptionTracking{Track: ptr.To(false)}
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := tpl.DeepCopy()
			got := TenantSpec(&tpl, tenantA, tc.overrides)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tenant spec (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(*before, tpl); diff != "" {
				t.Errorf("the template changed (-before +after):\n%s", diff)
			}
			got.Products = append(got.Products[:0], rule("CFQ7TTC0ZZZZ", v1.RuleUnmanaged))
			if diff := cmp.Diff(*before, tpl); diff != "" {
				t.Errorf("the child shares the template's products (-before +after):\n%s", diff)
			}
		})
	}
}

// TestMergeSettings: a set's override replaces the fields it sets and
// keeps the template's others; without an override the template's stay.
func TestMergeSettings(t *testing.T) {
	tpl := &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingUnmanaged,
		TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingEnabled}
	cases := map[string]struct {
		base *v1.TenantSettings
		o    *v1.TenantSettingsOverrides
		want *v1.TenantSettings
	}{
		"no override keeps the template": {base: tpl, want: tpl},
		"no template, no override":       {},
		"one field replaced, others kept": {base: tpl, o: &v1.TenantSettingsOverrides{OfficeStore: v1.SettingDisabled},
			want: &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingUnmanaged, TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingDisabled}},
		"Unmanaged in the override leaves it alone": {base: tpl, o: &v1.TenantSettingsOverrides{TrialsOnBehalfOfOrganization: v1.SettingUnmanaged},
			want: &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingUnmanaged, TrialsOnBehalfOfOrganization: v1.SettingUnmanaged, OfficeStore: v1.SettingEnabled}},
		"override without a template": {o: &v1.TenantSettingsOverrides{EmailVerifiedUsersJoin: v1.SettingDisabled},
			want: &v1.TenantSettings{EmailVerifiedUsersJoin: v1.SettingDisabled}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, mergeSettings(tc.base, tc.o)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
