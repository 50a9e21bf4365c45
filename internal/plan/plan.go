// Package plan decides the desired state of a tenant's self-service purchase
// policy from a TenantPurchasePolicy spec and what the tenant reports: which
// value each product and offer type should have, where that value comes from
// (rule, default, expired rule, Unmanaged), which rules name something the
// tenant does not have, and when the next temporary rule expires. It is pure
// (no clock, no I/O), so the controller and a command-line "plan" compute the
// same answer. It must not read a clock, do I/O, or import Kubernetes
// client code.
package plan

import (
	"sort"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// Target is the desired state of one product or offer type next to what the
// tenant reported.
type Target struct {
	ID       string
	Name     string
	Observed string
	// Desired is empty when the product is Unmanaged.
	Desired v1.PolicyValue
	Source  v1.DesiredSource
}

// Managed tells whether the policy sets a value for the product (it is not Unmanaged).
func (t Target) Managed() bool { return t.Desired != "" }

// Differs tells whether the product is managed and not at its desired value:
// exactly the products Enforce mode writes.
func (t Target) Differs() bool { return t.Managed() && string(t.Desired) != t.Observed }

// Plan is the whole desired state of a tenant.
type Plan struct {
	// Products are sorted by ID; OfferTypes follow the spec's order.
	Products   []Target
	OfferTypes []Target
	// Unknown lists product IDs and offer types that active rules name but
	// the tenant does not report.
	Unknown []string
	// NextExpiry is the earliest `until` still in the future, if any.
	NextExpiry *time.Time
}

// Compute decides the desired value of every product the tenant
// reports, once per product ID (a product reported twice counts as first
// reported; an item without an ID is ignored): an active rule wins; an expired rule or no rule falls back to
// default (so products Microsoft adds later are covered); Unmanaged, in a rule
// or as default, leaves the product alone. Offer types follow their rules only.
// It is pure: same inputs, same plan.
func Compute(spec *v1.TenantPurchasePolicySpec, products, offerTypes []licensing.Item, now time.Time) Plan {
	var p Plan
	rules := make(map[string]v1.ProductRule, len(spec.Products))
	for _, r := range spec.Products {
		rules[r.ProductID] = r
		if r.Until != nil && r.Until.Time.After(now) && (p.NextExpiry == nil || r.Until.Time.Before(*p.NextExpiry)) {
			t := r.Until.Time
			p.NextExpiry = &t
		}
	}

	seen := make(map[string]bool, len(products))
	for _, item := range products {
		if item.ProductID == "" || seen[item.ProductID] {
			continue // nothing to address, or reported twice: the first report counts
		}
		seen[item.ProductID] = true
		policy, source := spec.Default, v1.SourceDefault
		if r, ok := rules[item.ProductID]; ok {
			if r.Until != nil && !now.Before(r.Until.Time) {
				source = v1.SourceExpiredRule
			} else {
				policy, source = r.Policy, v1.SourceRule
			}
		}
		p.Products = append(p.Products, newTarget(item, policy, source))
	}
	for _, r := range spec.Products {
		expired := r.Until != nil && !now.Before(r.Until.Time)
		if !seen[r.ProductID] && !expired && r.Policy != v1.RuleUnmanaged {
			p.Unknown = append(p.Unknown, r.ProductID)
		}
	}

	observedOffers := make(map[string]licensing.Item, len(offerTypes))
	for _, item := range offerTypes {
		if _, dup := observedOffers[licensing.OfferTypeKey(item)]; !dup {
			observedOffers[licensing.OfferTypeKey(item)] = item
		}
	}
	for _, r := range spec.OfferTypes {
		item, ok := observedOffers[string(r.OfferType)]
		if !ok {
			p.Unknown = append(p.Unknown, string(r.OfferType))
			continue
		}
		item.ProductID = string(r.OfferType)
		p.OfferTypes = append(p.OfferTypes, newTarget(item, v1.RulePolicy(r.Policy), v1.SourceRule))
	}

	sort.Slice(p.Products, func(i, j int) bool { return p.Products[i].ID < p.Products[j].ID })
	sort.Strings(p.Unknown)
	return p
}

// newTarget makes the target of item under policy. A policy that is not a
// value Microsoft knows (Unmanaged, or anything the schema would have
// refused) leaves the product alone: nothing undefined is ever written.
func newTarget(item licensing.Item, policy v1.RulePolicy, source v1.DesiredSource) Target {
	t := Target{ID: item.ProductID, Name: item.ProductName, Observed: item.PolicyValue, Source: source}
	switch v1.PolicyValue(policy) {
	case v1.PolicyEnabled, v1.PolicyDisabled, v1.PolicyOnlyTrials:
	default:
		t.Source = v1.SourceUnmanaged
		return t
	}
	t.Desired = v1.PolicyValue(policy)
	return t
}
