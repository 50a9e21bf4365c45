package controllers

import (
	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// boundStatus keeps status within the bounds the CRD states (v1.Max*), so
// the API server never refuses a status write (422) over something
// Microsoft answered: an entry of a keyed list whose key repeats is dropped
// (the first one stays), as is one whose key is empty or too long to be
// stored; lists are capped and strings cut to their length. It runs right
// before every status write; act already keeps products within bounds and
// counts what it could not record (summary.productsDropped).
func boundStatus(st *v1.TenantPurchasePolicyStatus) {
	st.Products = boundEntries(st.Products, v1.MaxProducts)
	st.OfferTypes = boundEntries(st.OfferTypes, v1.MaxOfferTypes)
	st.TenantSettings = capped(unique(st.TenantSettings, func(t v1.TenantSettingStatus) string { return string(t.Setting) }), v1.MaxTenantSettings)
	st.DriftHistory = capped(st.DriftHistory, v1.MaxDriftHistory)
	for i := range st.DriftHistory {
		d := &st.DriftHistory[i]
		d.ProductID = truncate(d.ProductID, v1.MaxIDLength)
		d.Expected, d.Found = truncate(d.Expected, v1.MaxValueLength), truncate(d.Found, v1.MaxValueLength)
	}
	st.Conditions = capped(st.Conditions, v1.MaxConditions)
	for i := range st.Conditions {
		st.Conditions[i].Message = truncate(st.Conditions[i].Message, v1.MaxConditionMessage)
	}
	st.LastHandledReconcileAt = truncate(st.LastHandledReconcileAt, v1.MaxRequestedAtLength)
	if st.Subscriptions != nil {
		boundSubscriptions(st.Subscriptions)
	}
}

// boundEntries bounds status.products (or offerTypes).
func boundEntries(list []v1.ProductStatus, maxItems int) []v1.ProductStatus {
	list = capped(unique(list, func(p v1.ProductStatus) string { return p.ProductID }), maxItems)
	for i := range list {
		p := &list[i]
		p.Name = truncate(p.Name, v1.MaxNameLength)
		p.Observed = truncate(p.Observed, v1.MaxValueLength)
		p.AdoptedValue = truncate(p.AdoptedValue, v1.MaxValueLength)
		p.PendingValue = truncate(p.PendingValue, v1.MaxValueLength)
		p.Rejected = truncate(p.Rejected, v1.MaxRejectedLength)
	}
	return list
}

// boundSubscriptions bounds status.subscriptions.
func boundSubscriptions(sub *v1.SubscriptionsStatus) {
	sub.SelfService = capped(unique(sub.SelfService, func(s v1.SelfServiceSubscription) string { return s.ID }), v1.MaxSelfService)
	for i := range sub.SelfService {
		s := &sub.SelfService[i]
		s.SkuPartNumber = truncate(s.SkuPartNumber, v1.MaxSkuPartNumberLength)
		s.SkuID, s.BuyerID = truncate(s.SkuID, v1.MaxIDLength), truncate(s.BuyerID, v1.MaxIDLength)
		s.Status = truncate(s.Status, v1.MaxSubscriptionStatusLength)
	}
	sub.Handovers = capped(sub.Handovers, v1.MaxHandovers)
	for i := range sub.Handovers {
		h := &sub.Handovers[i]
		h.SubscriptionID = truncate(h.SubscriptionID, v1.MaxIDLength)
		h.SkuPartNumber = truncate(h.SkuPartNumber, v1.MaxSkuPartNumberLength)
		h.BuyerID = truncate(h.BuyerID, v1.MaxIDLength)
		h.Evidence = truncate(h.Evidence, v1.MaxEvidenceLength)
	}
}

// unique keeps the first entry of each key, dropping entries whose key is
// empty or longer than an ID may be (cutting it could merge two entries).
func unique[T any](list []T, key func(T) string) []T {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, e := range list {
		k := key(e)
		if k == "" || len(k) > v1.MaxIDLength || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}

// capped keeps the first n entries.
func capped[T any](list []T, n int) []T {
	if len(list) > n {
		return list[:n]
	}
	return list
}
