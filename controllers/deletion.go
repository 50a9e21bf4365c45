package controllers

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// A policy being deleted runs through the same Reconcile and finish as any
// other run, with deleteSteps. deletionOutcome (outcome.go) decides from
// their result whether the finalizer goes; finish releases it after the
// status write.

// maxRestoreAttempts is how many deletion attempts may fail for a reason
// retrying cannot fix (restoreBlocked) before the finalizer is released
// without restoring.
const maxRestoreAttempts = 3

// orphanHint tells a person how to release a deletion that waits for Restore.
const orphanHint = "set deletionPolicy: Orphan to release now"

// restores tells whether deleting p writes anything to the tenant: only an
// Enforce policy with deletionPolicy Restore does.
func restores(p *v1.TenantPurchasePolicy) bool {
	return p.Spec.DeletionPolicy == v1.DeletionRestore && p.Spec.Mode == v1.ModeEnforce
}

// deleteSteps run deletionPolicy. Orphan (and any Observe policy) leaves the
// tenant as it is: no step. Restore reads the tenant as the owner would and
// writes back the adoption values (products, then tenant settings).
func (r *TenantPurchasePolicyReconciler) deleteSteps(p *v1.TenantPurchasePolicy) []step {
	if !restores(p) {
		return nil
	}
	return []step{r.checkTenantID, r.loadCredentials, r.observeTenant, r.resolveOwnership, r.restore, r.restoreSettings, r.checkRefreshToken}
}

// restore writes back the adoption values of the products (and offer types)
// this policy adopted; products that appeared later are left alone.
//
// Queues Event Restored.
func (r *TenantPurchasePolicyReconciler) restore(ctx context.Context, s *syncState) error {
	p := s.policy
	products, err := restoreList(ctx, p.Status.Products, s.products, s.policies.SetProduct)
	if err != nil {
		return err
	}
	offers := 0
	if len(p.Status.OfferTypes) > 0 {
		current, info, err := s.policies.ListOfferTypes(ctx)
		if err != nil {
			return classify(err)
		}
		if s.productList != nil {
			s.productList.Add(info)
		}
		if offers, err = restoreList(ctx, p.Status.OfferTypes, current, s.policies.SetOfferType); err != nil {
			return err
		}
	}
	s.event(eventNormal, v1.EventRestored, "restored %d products and %d offer types of tenant %s to their values at adoption", products, offers, p.Spec.TenantID)
	return nil
}

// restoreList writes back the adoption value of every entry that has one and
// differs now. Entries Microsoft no longer knows or refuses for good are
// skipped; anything else stops the restore.
func restoreList(ctx context.Context, entries []v1.ProductStatus, items []licensing.Item, write writeFunc) (int, error) {
	current := make(map[string]string, len(items))
	for _, item := range items {
		current[licensing.OfferTypeKey(item)] = item.PolicyValue // the product ID for products
	}
	restored := 0
	for _, ps := range entries {
		v, ok := current[ps.ProductID]
		if ps.AdoptedValue == "" || !ok || v == ps.AdoptedValue || ps.Source == v1.SourceUnmanaged {
			continue
		}
		if _, err := write(ctx, ps.ProductID, ps.AdoptedValue); err != nil {
			if k := m365.KindOf(err); k == m365.NotFound || k == m365.BadRequest {
				continue
			}
			return restored, classify(fmt.Errorf("restoring %s to %s: %w", ps.ProductID, ps.AdoptedValue, err))
		}
		restored++
	}
	return restored, nil
}

// restoreBlocked tells whether a deletion attempt failed for a reason
// retrying cannot fix, so that it counts towards maxRestoreAttempts: any
// stall (the Secret or ServiceAccount is gone, Entra refused the credential
// or no longer knows the tenant, a permission is missing, Microsoft refused
// the request) and a product list without products (a tenant that no longer
// has any). A lost conflict is handled before (released at once); throttling
// and transient errors are retried without counting.
func restoreBlocked(err error) bool {
	if _, ok := asStalled(err); ok {
		return true
	}
	return errors.Is(err, errEmptyProductList)
}
