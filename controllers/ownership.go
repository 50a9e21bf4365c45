package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// A loser reads the owner named by the tenant's Lease (through Claimants:
// uncached when it may be in another shard or namespace).
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicies,verbs=get

// TenantIDField is the field selector (and cache index) of spec.tenantID.
const TenantIDField = "spec.tenantID"

// Ownership. One Enforce policy owns a tenant: among the Enforce policies
// with its tenantID (any namespace, any shard), the oldest by
// creationTimestamp, ties broken by UID, counting only healthy owners
// (healthyOwner). The owner is recorded in the tenant's Lease
// (tenantlease.go). In steady state a run reads that Lease (one GET) and,
// when another policy holds it, that policy (one GET): constant cost
// whatever the fleet size. Only when something changed (no Lease yet, the
// holder is gone or no longer healthy, an older policy claims the tenant,
// the owner is leaving) does a run list the tenant's policies on
// spec.tenantID, elect the owner and write the Lease with an optimistic
// lock. That List (and the owner's GET) goes to the API server when shards
// or watched namespaces hide policies from this replica's cache, and to
// the cache's index when the cache holds every policy (Claimants): a field
// selector makes the API server scan every policy, which for a fleet's
// first sync (one election per tenant) is O(N²).

// resolveOwnership lets only the tenant's owner go on to write. Observe
// policies never conflict; a policy being deleted never owns, and hands the
// tenant to the next owner if it held it.
//
// Sets the Conflict condition (through syncState.conflictOwner).
func (r *TenantPurchasePolicyReconciler) resolveOwnership(ctx context.Context, s *syncState) error {
	s.ownerChecked = true
	if s.policy.Spec.Mode == v1.ModeObserve {
		return nil
	}
	return retry.OnError(retry.DefaultRetry, isClaimRace, func() error { return r.claimTenant(ctx, s) })
}

// claimTenant is one attempt of resolveOwnership: the Lease fast path, or an
// election when something changed. A lost Lease write is retried by the
// caller on fresh data.
func (r *TenantPurchasePolicyReconciler) claimTenant(ctx context.Context, s *syncState) error {
	p := s.policy
	claim, err := r.readClaim(ctx, tenantKey(p))
	if err != nil {
		return err
	}
	switch {
	case claim.heldBy(p.UID) && p.DeletionTimestamp.IsZero():
		return nil // steady state of the owner: one GET
	case claim != nil && !claim.heldBy(p.UID) && claim.uid != "":
		holder, err := r.readHolder(ctx, claim)
		if err != nil {
			return err
		}
		if holder != nil && healthyOwner(holder, &claim.renewed, s.now) && !outranks(s, holder) {
			return s.lostTo(holder) // steady state of a loser: two GETs
		}
	}
	return r.electAndRecord(ctx, s, claim)
}

// claimants is the reader of elections (Claimants, else APIReader).
func (r *TenantPurchasePolicyReconciler) claimants() client.Reader {
	if r.Claimants != nil {
		return r.Claimants
	}
	return r.APIReader
}

// electAndRecord lists the tenant's policies, elects the owner and records
// it in the Lease. The List runs only here, when ownership changes.
func (r *TenantPurchasePolicyReconciler) electAndRecord(ctx context.Context, s *syncState, claim *tenantClaim) error {
	p := s.policy
	var claimants v1.TenantPurchasePolicyList
	if err := r.claimants().List(ctx, &claimants, client.MatchingFields{TenantIDField: tenantKey(p)}); err != nil {
		return fmt.Errorf("listing policies of tenant %s: %w", p.Spec.TenantID, err)
	}
	owner := electOwner(claimants.Items, s.base, claim, s.now)
	if owner == nil {
		return nil // leaving, and nobody may take over: restore; the Lease goes with the finalizer
	}
	renewed := s.now
	if owner.UID == p.UID {
		if err := firstClaim(claimants.Items, s.base); err != nil {
			return err
		}
	} else {
		renewed = lastSync(owner, claim)
	}
	if err := r.writeClaim(ctx, tenantKey(p), claim, owner, p, renewed); err != nil {
		return err
	}
	if owner.UID == p.UID {
		return nil
	}
	return s.lostTo(owner)
}

// readHolder reads the policy a claim names (through Claimants: uncached
// when it may be in another shard or namespace): nil when it no longer
// exists.
func (r *TenantPurchasePolicyReconciler) readHolder(ctx context.Context, claim *tenantClaim) (*v1.TenantPurchasePolicy, error) {
	holder := &v1.TenantPurchasePolicy{}
	if err := r.claimants().Get(ctx, claim.holder, holder); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the owner %s of tenant: %w", claim.holder, err)
	}
	if holder.UID != claim.uid {
		return nil, nil // deleted and re-created under the same name: another policy
	}
	return holder, nil
}

// lostTo stops the run: owner enforces the tenant. A policy whose last
// write was refused (writeRefused) keeps saying so, so it stays out of the
// election until someone acts on it; any other loser (a policy being
// deleted included) is ConflictLost.
func (s *syncState) lostTo(owner *v1.TenantPurchasePolicy) error {
	s.conflictOwner = owner.Namespace + "/" + owner.Name
	if c := writeRefused(s.base); c != nil && !s.deleting {
		return stalled(c.Reason, "%s", c.Message)
	}
	return stalled(v1.ReasonConflictLost, "tenant %s is enforced by the older TenantPurchasePolicy %s; this policy writes nothing until that one is deleted, set to Observe or suspended, or stops syncing",
		s.policy.Spec.TenantID, s.conflictOwner)
}

// healthWindow is how long a successful sync keeps a policy a healthy
// owner: two of its intervals.
func healthWindow(p *v1.TenantPurchasePolicy) time.Duration {
	interval := p.Spec.Interval.Duration
	if interval <= 0 {
		interval = 15 * time.Minute
	}
	return 2 * interval
}

// deniedReasons are the Stalled reasons of a policy that cannot
// authenticate or may not write: Microsoft answered 401 or 403, or its
// credentials cannot be loaded at all (which is never better than a 401).
var deniedReasons = map[string]bool{
	v1.ReasonAuthenticationFailed:       true,
	v1.ReasonForbidden:                  true,
	v1.ReasonInvalidCredentials:         true,
	v1.ReasonInvalidCertificate:         true,
	v1.ReasonSecretNotFound:             true,
	v1.ReasonSecretKeyNotFound:          true,
	v1.ReasonServiceAccountNotFound:     true,
	v1.ReasonServiceAccountNotAnnotated: true,
}

// healthyOwner is the rule of the Decisions: p may own its tenant when it
// is an Enforce policy, not being deleted, not suspended, not Stalled on a
// 401/403 (deniedReasons), and has synced with the tenant successfully
// (status.lastSyncTime, or renewed: a sync the Lease recorded before the
// status showed it) within the last two of its intervals. A policy that
// never authenticated has never synced, so it can never squat a tenant.
func healthyOwner(p *v1.TenantPurchasePolicy, renewed *metav1.Time, now time.Time) bool {
	if p.Spec.Mode == v1.ModeObserve || !p.DeletionTimestamp.IsZero() || p.Spec.Suspend || miscased(p) {
		return false
	}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1.StalledCondition); c != nil && c.Status == metav1.ConditionTrue && deniedReasons[c.Reason] {
		return false
	}
	synced := lastSync(p, nil)
	if renewed != nil && renewed.After(synced) {
		synced = renewed.Time
	}
	return !synced.IsZero() && now.Sub(synced) <= healthWindow(p)
}

// lastSync is p's last successful sync: status.lastSyncTime, or the time
// the claim recorded for it if later.
func lastSync(p *v1.TenantPurchasePolicy, claim *tenantClaim) time.Time {
	var t time.Time
	if p.Status.LastSyncTime != nil {
		t = p.Status.LastSyncTime.Time
	}
	if r := claim.renewedFor(p.UID); r != nil && r.After(t) {
		t = r.Time
	}
	return t
}

// writeRefused returns the Stalled condition of a policy whose last run was
// refused by Microsoft with 403 and whose spec has not changed since. Its
// reads work, so it reaches the election in its own run; without this it
// would take the tenant back from a healthy owner at every run, only to be
// refused again. A reconcile-now request does not count as a change: tools
// send it routinely; a person who fixed the app's permission changes the
// spec (or the policy owns the tenant anyway once no other policy is
// healthy).
func writeRefused(p *v1.TenantPurchasePolicy) *metav1.Condition {
	c := meta.FindStatusCondition(p.Status.Conditions, v1.StalledCondition)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonForbidden || c.ObservedGeneration != p.Generation {
		return nil
	}
	return c
}

// outranks tells whether the running policy takes the tenant from holder,
// a healthy owner: it is older and may write. In its own run a policy has
// just read the tenant, so it counts as synced.
func outranks(s *syncState, holder *v1.TenantPurchasePolicy) bool {
	return s.policy.DeletionTimestamp.IsZero() && writeRefused(s.base) == nil && older(s.policy, holder)
}

// older orders policies by creationTimestamp, ties broken by UID, so every
// shard elects the same owner.
func older(a, b *v1.TenantPurchasePolicy) bool {
	return earlier(a.CreationTimestamp, b.CreationTimestamp, a.UID, b.UID)
}

// earlier is the order of older on creation times and UIDs.
func earlier(a, b metav1.Time, aUID, bUID types.UID) bool {
	if !a.Equal(&b) {
		return a.Before(&b)
	}
	return aUID < bUID
}

// electOwner returns the tenant's owner among the listed claimants and self
// (the running policy, as read): the oldest healthy owner. Self has just
// read the tenant, so it counts as synced; if its last write was refused
// (writeRefused) it owns only when nobody else is healthy. nil: no owner
// (self is being deleted and no other policy is healthy).
func electOwner(claimants []v1.TenantPurchasePolicy, self *v1.TenantPurchasePolicy, claim *tenantClaim, now time.Time) *v1.TenantPurchasePolicy {
	var best *v1.TenantPurchasePolicy
	for i := range claimants {
		c := &claimants[i]
		if c.UID == self.UID || !healthyOwner(c, claim.renewedFor(c.UID), now) {
			continue
		}
		if best == nil || older(c, best) {
			best = c
		}
	}
	switch {
	case self.Spec.Mode == v1.ModeObserve || !self.DeletionTimestamp.IsZero():
		return best
	case best == nil, writeRefused(self) == nil && older(self, best):
		return self
	}
	return best
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
		if c.UID != self.UID && older(c, self) && c.Spec.Mode != v1.ModeObserve && !c.Spec.Suspend && c.DeletionTimestamp.IsZero() && c.Status.AuthenticatedAt == nil && !miscased(c) {
			return waiting(claimWait, v1.ReasonWaitingForOlderPolicy,
				"waiting for the older TenantPurchasePolicy %s/%s to authenticate before claiming tenant %s", c.Namespace, c.Name, self.Spec.TenantID)
		}
	}
	return nil
}
