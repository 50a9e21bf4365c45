package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// TenantIDField is the field selector (and cache index) of spec.tenantID.
const TenantIDField = "spec.tenantID"

// resolveOwnership lets one Enforce policy own a tenant: the oldest (ties by
// UID) among the Enforce policies with this tenantID that have authenticated,
// found with an uncached List on the spec.tenantID field selector so
// controllers of other shards see each other. Observe policies never conflict.
//
// Sets the Conflict condition (through syncState.conflictOwner).
func (r *TenantPurchasePolicyReconciler) resolveOwnership(ctx context.Context, s *syncState) error {
	s.ownerChecked = true
	p := s.policy
	if p.Spec.Mode == v1.ModeObserve {
		return nil
	}
	var claimants v1.TenantPurchasePolicyList
	if err := r.APIReader.List(ctx, &claimants, client.MatchingFields{TenantIDField: tenantKey(p)}); err != nil {
		return fmt.Errorf("listing policies of tenant %s: %w", p.Spec.TenantID, err)
	}
	owner := electOwner(claimants.Items, p)
	if owner == nil || owner.UID == p.UID {
		return firstClaim(claimants.Items, s.base)
	}
	s.conflictOwner = owner.Namespace + "/" + owner.Name
	return stalled(v1.ReasonConflictLost, "tenant %s is enforced by the older TenantPurchasePolicy %s; this policy writes nothing until that one is deleted or set to Observe",
		p.Spec.TenantID, s.conflictOwner)
}

// claimWait is how long a new policy lets an older one authenticate first.
const claimWait = 2 * time.Second

// firstClaim holds back, for one short wait, a policy authenticating for the
// first time while an older Enforce policy of the tenant has not authenticated
// yet: both may be in their first run, each unable to see the other, and only
// the older may write. If the older one still has not authenticated by then
// (bad credentials), it cannot squat the tenant: this policy has
// authenticated and claims it.
func firstClaim(policies []v1.TenantPurchasePolicy, self *v1.TenantPurchasePolicy) error {
	if self.Status.AuthenticatedAt != nil {
		return nil
	}
	for i := range policies {
		c := &policies[i]
		older := c.CreationTimestamp.Before(&self.CreationTimestamp) || c.CreationTimestamp.Equal(&self.CreationTimestamp) && c.UID < self.UID
		if c.UID != self.UID && older && c.Spec.Mode != v1.ModeObserve && c.DeletionTimestamp.IsZero() && c.Status.AuthenticatedAt == nil && !miscased(c) {
			return waiting(claimWait, v1.ReasonWaitingForOlderPolicy,
				"waiting for the older TenantPurchasePolicy %s/%s to authenticate before claiming tenant %s", c.Namespace, c.Name, self.Spec.TenantID)
		}
	}
	return nil
}

// electOwner returns the owner of a tenant among policies, counting self as
// authenticated (it just read the tenant).
func electOwner(policies []v1.TenantPurchasePolicy, self *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	var candidates []*v1.TenantPurchasePolicy
	for i := range policies {
		c := &policies[i]
		if c.UID == self.UID {
			c = self
		}
		if c.Spec.Mode == v1.ModeObserve || !c.DeletionTimestamp.IsZero() || c.Status.AuthenticatedAt == nil || miscased(c) {
			continue
		}
		candidates = append(candidates, c)
	}
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.UID < b.UID
	})
	if len(candidates) == 0 {
		return nil
	}
	return candidates[0]
}
