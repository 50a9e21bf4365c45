package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

var errEmptyProductList = errors.New("the licensing API listed no products for the tenant")

// observeTenant reads the tenant: one product list, and one offer-type list
// when the policy has offer-type rules. The first success marks the policy as
// authenticated, which lets it own the tenant.
//
// Sets status.authenticatedAt (status.lastSyncTime follows from the plan, in
// recordStatus).
func (r *TenantPurchasePolicyReconciler) observeTenant(ctx context.Context, s *syncState) error {
	p := s.policy
	products, info, err := s.policies.ListProducts(ctx)
	if err != nil {
		return classify(err)
	}
	if len(products) == 0 {
		// Every tenant has products; an empty answer must not re-adopt or
		// forget what status holds. Retry with backoff.
		return errEmptyProductList
	}
	s.products, s.unlisted = products, int32(info.Invalid)
	s.productList = &info
	if len(p.Spec.OfferTypes) > 0 {
		var more m365.ListInfo
		if s.offerTypes, more, err = s.policies.ListOfferTypes(ctx); err != nil {
			return classify(err)
		}
		info.Add(more)
	}
	now := metav1.NewTime(s.now)
	if p.Status.AuthenticatedAt == nil {
		p.Status.AuthenticatedAt = &now
	}
	return nil
}

// computePlan decides the desired value of every product (plan.Compute) and
// schedules a run at the next rule expiry. Rules naming a product the tenant
// does not have are a soft stall: every other product is still enforced. A
// product status still holds (missing from this list, see decideMissing) is
// not unknown.
func (r *TenantPurchasePolicyReconciler) computePlan(_ context.Context, s *syncState) error {
	pl := plan.Compute(&s.policy.Spec, s.products, s.offerTypes, s.now)
	s.plan = &pl
	if pl.NextExpiry != nil {
		s.wakeAt = append(s.wakeAt, *pl.NextExpiry)
	}
	known := map[string]bool{}
	for _, ps := range append(slices.Clip(s.policy.Status.Products), s.policy.Status.OfferTypes...) {
		known[ps.ProductID] = true
	}
	pl.Unknown = slices.DeleteFunc(pl.Unknown, func(id string) bool { return known[id] })
	if len(pl.Unknown) > 0 {
		s.softStall(v1.ReasonUnknownProduct, "the tenant has no product or offer type %s; every other product is enforced", strings.Join(pl.Unknown, ", "))
	}
	return nil
}
