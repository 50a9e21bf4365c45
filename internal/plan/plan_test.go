package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

const (
	idCopilot = "CFQ7TTC0MM8R"
	idPBIPro  = "CFQ7TTC0H9MP"
	idTeamsEx = "CFQ7TTC0J1FV"
	idUnknown = "CFQ7TTC0ZZZ9"
)

// licItem is a product as the licensing API reports it.
func licItem(id, value string) licensing.Item {
	return licensing.Item{PolicyID: "AllowSelfServicePurchase", ProductID: id, ProductName: "name of " + id, PolicyValue: value}
}

// licOffer is an offer type as the licensing API reports it.
func licOffer(offer, value string) licensing.Item {
	return licensing.Item{PolicyID: "AllowSelfServicePurchase", OfferType: offer, PolicyValue: value}
}

// wantTarget is the expected Target of a product.
func wantTarget(id, observed string, desired v1.PolicyValue, source v1.DesiredSource) Target {
	return Target{ID: id, Name: "name of " + id, Observed: observed, Desired: desired, Source: source}
}

func metaTime(t time.Time) *metav1.Time { m := metav1.NewTime(t); return &m }

func TestCompute(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	later, later2, earlier := now.Add(time.Hour), now.Add(2*time.Hour), now.Add(-time.Hour)
	enabled, disabled := string(v1.PolicyEnabled), string(v1.PolicyDisabled)
	tenant := []licensing.Item{licItem(idPBIPro, enabled), licItem(idCopilot, enabled), licItem(idTeamsEx, disabled)}

	cases := map[string]struct {
		reason     string
		spec       v1.TenantPurchasePolicyTemplate
		products   []licensing.Item
		offerTypes []licensing.Item
		want       Plan
	}{
		"default only": {
			reason:   "every product the tenant reports, listed or not, gets default, sorted by ID",
			spec:     v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled)},
			products: tenant,
			want: Plan{Products: []Target{
				wantTarget(idPBIPro, enabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idTeamsEx, disabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceDefault),
			}},
		},
		"rule wins over default": {
			reason: "a rule sets its product; the others follow default",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled),
				Products: []v1.ProductRule{{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}}},
			products: tenant,
			want: Plan{Products: []Target{
				wantTarget(idPBIPro, enabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idTeamsEx, disabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idCopilot, enabled, v1.PolicyOnlyTrials, v1.SourceRule),
			}},
		},
		"unmanaged rule": {
			reason: "an Unmanaged rule leaves its product alone whatever default says",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled),
				Products: []v1.ProductRule{{ProductID: idCopilot, Policy: v1.RuleUnmanaged}}},
			products: tenant,
			want: Plan{Products: []Target{
				wantTarget(idPBIPro, enabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idTeamsEx, disabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idCopilot, enabled, "", v1.SourceUnmanaged),
			}},
		},
		"unmanaged default": {
			reason: "default Unmanaged manages only the products with a rule",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RuleUnmanaged,
				Products: []v1.ProductRule{{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyDisabled)}}},
			products: tenant,
			want: Plan{Products: []Target{
				wantTarget(idPBIPro, enabled, "", v1.SourceUnmanaged),
				wantTarget(idTeamsEx, disabled, "", v1.SourceUnmanaged),
				wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceRule),
			}},
		},
		"until in the future": {
			reason: "a temporary rule applies until it expires, and the Plan wakes at the earliest expiry",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: metaTime(later2)},
				{ProductID: idPBIPro, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: metaTime(later)},
			}},
			products: tenant,
			want: Plan{NextExpiry: &later, Products: []Target{
				wantTarget(idPBIPro, enabled, v1.PolicyEnabled, v1.SourceRule),
				wantTarget(idTeamsEx, disabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idCopilot, enabled, v1.PolicyEnabled, v1.SourceRule),
			}},
		},
		"until passed": {
			reason: "after until, default takes over and status says the rule expired",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: metaTime(earlier)},
			}},
			products: tenant,
			want: Plan{Products: []Target{
				wantTarget(idPBIPro, enabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idTeamsEx, disabled, v1.PolicyDisabled, v1.SourceDefault),
				wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceExpiredRule),
			}},
		},
		"until exactly now": {
			reason: "the rule ends at until: at that instant default applies and no wake-up is left",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: metaTime(now)},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want:     Plan{Products: []Target{wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceExpiredRule)}},
		},
		"until one nanosecond ahead": {
			reason: "just before until the rule still applies and the Plan wakes at until",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: metaTime(now.Add(time.Nanosecond))},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want: Plan{NextExpiry: timePtr(now.Add(time.Nanosecond)),
				Products: []Target{wantTarget(idCopilot, enabled, v1.PolicyEnabled, v1.SourceRule)}},
		},
		"expired rule with unmanaged default": {
			reason: "when the rule expires and default is Unmanaged, the product is left alone",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RuleUnmanaged, Products: []v1.ProductRule{
				{ProductID: idCopilot, Policy: v1.RulePolicy(v1.PolicyDisabled), Until: metaTime(earlier)},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want:     Plan{Products: []Target{wantTarget(idCopilot, enabled, "", v1.SourceUnmanaged)}},
		},
		"unknown product": {
			reason: "a rule naming a product the tenant lacks is reported; the others are still planned",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idUnknown, Policy: v1.RulePolicy(v1.PolicyDisabled)},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want: Plan{Unknown: []string{idUnknown},
				Products: []Target{wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceDefault)}},
		},
		"expired unknown product": {
			reason: "an expired rule no longer asks for anything, so its unknown product is not reported",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idUnknown, Policy: v1.RulePolicy(v1.PolicyDisabled), Until: metaTime(earlier)},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want:     Plan{Products: []Target{wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceDefault)}},
		},
		"unmanaged unknown product": {
			reason: "an Unmanaged rule writes nothing, so a product the tenant lacks is no error",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), Products: []v1.ProductRule{
				{ProductID: idUnknown, Policy: v1.RuleUnmanaged},
			}},
			products: []licensing.Item{licItem(idCopilot, enabled)},
			want:     Plan{Products: []Target{wantTarget(idCopilot, enabled, v1.PolicyDisabled, v1.SourceDefault)}},
		},
		"offer types": {
			reason: "offer types follow their rules only, keyed by offer type; default never covers them",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), OfferTypes: []v1.OfferTypeRule{
				{OfferType: "SaaS", Policy: v1.PolicyDisabled},
				{OfferType: "DYNAMICSBC", Policy: v1.PolicyEnabled},
			}},
			offerTypes: []licensing.Item{licOffer("SaaS", enabled), licOffer("POWERBIVISUALS", enabled), licOffer("DYNAMICSBC", enabled)},
			want: Plan{OfferTypes: []Target{
				{ID: "SaaS", Observed: enabled, Desired: v1.PolicyDisabled, Source: v1.SourceRule},
				{ID: "DYNAMICSBC", Observed: enabled, Desired: v1.PolicyEnabled, Source: v1.SourceRule},
			}},
		},
		"unknown offer type": {
			reason: "an offer type the tenant does not report is unknown, like a product",
			spec: v1.TenantPurchasePolicyTemplate{Default: v1.RulePolicy(v1.PolicyDisabled), OfferTypes: []v1.OfferTypeRule{
				{OfferType: "DYNAMICSCE", Policy: v1.PolicyDisabled},
			}},
			offerTypes: []licensing.Item{licOffer("SaaS", enabled)},
			want:       Plan{Unknown: []string{"DYNAMICSCE"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := Compute(&v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: tc.spec}, tc.products, tc.offerTypes, now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCompute (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestTargetDiffers(t *testing.T) {
	cases := map[string]struct {
		reason  string
		t       Target
		managed bool
		differs bool
	}{
		"managed and equal":   {"a managed product at its value needs no write", Target{Observed: "Disabled", Desired: v1.PolicyDisabled}, true, false},
		"managed and differs": {"a managed product at another value needs a write", Target{Observed: "Enabled", Desired: v1.PolicyDisabled}, true, true},
		"unmanaged":           {"an Unmanaged product never differs, so it is never written", Target{Observed: "Enabled"}, false, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := []bool{tc.t.Managed(), tc.t.Differs()}
			if diff := cmp.Diff([]bool{tc.managed, tc.differs}, got); diff != "" {
				t.Errorf("%s\n[managed differs] (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func timePtr(v time.Time) *time.Time { return &v }
