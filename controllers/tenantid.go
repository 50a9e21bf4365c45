package controllers

import (
	"context"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// tenantKey is the one spelling of a policy's tenant that every key the
// controller builds uses: the ownership List, the field index, the clients'
// not-before gate and token cache, the metrics label. Entra compares tenant
// IDs case-insensitively, so 72F988BF-… and 72f988bf-… must be one tenant.
func tenantKey(p *v1.TenantPurchasePolicy) string {
	return canonicalTenantID(p.Spec.TenantID)
}

// canonicalTenantID is the lower-case spelling of a tenant ID.
func canonicalTenantID(id string) string {
	return strings.ToLower(strings.TrimSpace(id))
}

// miscased tells whether p's tenantID is not in lower case: such a policy
// writes nothing (checkTenantID), so it owns no tenant and no one waits for
// it.
func miscased(p *v1.TenantPurchasePolicy) bool {
	return p.Spec.TenantID != tenantKey(p)
}

// indexTenantID is the cache index of TenantIDField.
func indexTenantID(o client.Object) []string {
	return []string{tenantKey(o.(*v1.TenantPurchasePolicy))}
}

// checkTenantID stalls a policy whose tenantID is not in lower case. The
// schema refuses such a policy today; one stored before that rule would list
// its tenant's claimants with the API server's field selector, which
// compares exactly, so neither it nor the others could see each other, and
// two of them could both own the tenant. It writes nothing, and a deletion
// releases its finalizer without restoring.
//
// Sets nothing (the stall is the outcome).
func (r *TenantPurchasePolicyReconciler) checkTenantID(_ context.Context, s *syncState) error {
	if miscased(s.policy) {
		return stalled(v1.ReasonTenantIDNotLowerCase,
			"spec.tenantID %q is not a lower-case GUID, so this policy cannot find the other policies of its tenant; it writes nothing: recreate it with tenantID %s",
			s.policy.Spec.TenantID, tenantKey(s.policy))
	}
	return nil
}
