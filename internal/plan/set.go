package plan

import (
	"slices"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// TenantSpec is the spec of one tenant of a TenantPurchasePolicySet: the
// set's template with the tenant's overrides (the set controller writes it
// into the tenant's child policy; kubectl tpp plan plans it): mode, default and
// suspend replace the template's, products and offer types are merged by
// key (an override replaces the template's rule in place, new rules come
// after), tenantSettings field by field, subscriptions replaces the
// template's as a whole.
func TenantSpec(tpl *v1.TenantPurchasePolicyTemplate, tenantID string, o *v1.PolicyOverrides) v1.TenantPurchasePolicySpec {
	spec := v1.TenantPurchasePolicySpec{TenantID: tenantID, TenantPurchasePolicyTemplate: *tpl.DeepCopy()}
	if o == nil {
		return spec
	}
	o = o.DeepCopy()
	t := &spec.TenantPurchasePolicyTemplate
	if o.Mode != nil {
		t.Mode = *o.Mode
	}
	if o.Default != nil {
		t.Default = *o.Default
	}
	if o.Suspend != nil {
		t.Suspend = *o.Suspend
	}
	if o.Subscriptions != nil {
		t.Subscriptions = *o.Subscriptions
	}
	t.TenantSettings = mergeSettings(t.TenantSettings, o.TenantSettings)
	t.Products = mergeByKey(t.Products, o.Products, func(r v1.ProductRule) string { return r.ProductID })
	t.OfferTypes = mergeByKey(t.OfferTypes, o.OfferTypes, func(r v1.OfferTypeRule) string { return string(r.OfferType) })
	return spec
}

// mergeSettings is the template's tenant settings with each field the
// override sets replacing the template's.
func mergeSettings(base *v1.TenantSettings, o *v1.TenantSettingsOverrides) *v1.TenantSettings {
	if o == nil {
		return base
	}
	out := &v1.TenantSettings{}
	if base != nil {
		*out = *base
	}
	for _, f := range []struct {
		dst *v1.SettingPolicy
		v   v1.SettingPolicy
	}{
		{&out.EmailBasedSubscriptions, o.EmailBasedSubscriptions},
		{&out.EmailVerifiedUsersJoin, o.EmailVerifiedUsersJoin},
		{&out.TrialsOnBehalfOfOrganization, o.TrialsOnBehalfOfOrganization},
		{&out.OfficeStore, o.OfficeStore},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return out
}

// mergeByKey returns base with each entry of over replacing the entry of
// the same key in place, and the entries of over with new keys appended.
func mergeByKey[T any](base, over []T, key func(T) string) []T {
	if len(over) == 0 {
		return base
	}
	at := make(map[string]int, len(base))
	out := slices.Clone(base)
	for i, b := range out {
		at[key(b)] = i
	}
	for _, o := range over {
		if i, ok := at[key(o)]; ok {
			out[i] = o
			continue
		}
		at[key(o)] = len(out)
		out = append(out, o)
	}
	return out
}
