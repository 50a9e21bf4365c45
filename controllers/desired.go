package controllers

import (
	"sort"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// target is the desired state of one product or offer type next to what the
// tenant reported.
type target struct {
	ID       string
	Name     string
	Observed string
	// Desired is empty when the product is Unmanaged.
	Desired v1.PolicyValue
	Source  v1.DesiredSource
}

func (t target) managed() bool { return t.Desired != "" }
func (t target) differs() bool { return t.managed() && string(t.Desired) != t.Observed }

// plan is the whole desired state of a tenant.
type plan struct {
	products   []target
	offerTypes []target
	// unknown lists product IDs and offer types that active rules name but the
	// tenant does not report.
	unknown []string
	// nextExpiry is the earliest `until` still in the future, if any.
	nextExpiry *time.Time
}

// computeDesired decides the desired value of every product the tenant
// reports: an active rule wins; an expired rule or no rule falls back to
// default (so products Microsoft adds later are covered); Unmanaged, in a rule
// or as default, leaves the product alone. Offer types follow their rules only.
// It is pure: same inputs, same plan.
func computeDesired(spec *v1.TenantPurchasePolicySpec, products, offerTypes []licensing.Item, now time.Time) plan {
	var p plan
	rules := make(map[string]v1.ProductRule, len(spec.Products))
	for _, r := range spec.Products {
		rules[r.ProductID] = r
		if r.Until != nil && r.Until.Time.After(now) && (p.nextExpiry == nil || r.Until.Time.Before(*p.nextExpiry)) {
			t := r.Until.Time
			p.nextExpiry = &t
		}
	}

	seen := make(map[string]bool, len(products))
	for _, item := range products {
		seen[item.ProductID] = true
		policy, source := spec.Default, v1.SourceDefault
		if r, ok := rules[item.ProductID]; ok {
			if r.Until != nil && !now.Before(r.Until.Time) {
				source = v1.SourceExpiredRule
			} else {
				policy, source = r.Policy, v1.SourceRule
			}
		}
		p.products = append(p.products, newTarget(item, policy, source))
	}
	for _, r := range spec.Products {
		expired := r.Until != nil && !now.Before(r.Until.Time)
		if !seen[r.ProductID] && !expired && r.Policy != v1.RuleUnmanaged {
			p.unknown = append(p.unknown, r.ProductID)
		}
	}

	observedOffers := make(map[string]licensing.Item, len(offerTypes))
	for _, item := range offerTypes {
		observedOffers[licensing.OfferTypeKey(item)] = item
	}
	for _, r := range spec.OfferTypes {
		item, ok := observedOffers[string(r.OfferType)]
		if !ok {
			p.unknown = append(p.unknown, string(r.OfferType))
			continue
		}
		item.ProductID = string(r.OfferType)
		p.offerTypes = append(p.offerTypes, newTarget(item, v1.RulePolicy(r.Policy), v1.SourceRule))
	}

	sort.Slice(p.products, func(i, j int) bool { return p.products[i].ID < p.products[j].ID })
	sort.Strings(p.unknown)
	return p
}

func newTarget(item licensing.Item, policy v1.RulePolicy, source v1.DesiredSource) target {
	t := target{ID: item.ProductID, Name: item.ProductName, Observed: item.PolicyValue, Source: source}
	if policy == v1.RuleUnmanaged {
		t.Source = v1.SourceUnmanaged
		return t
	}
	t.Desired = v1.PolicyValue(policy)
	return t
}
