package controllers

// The ownership record: one coordination.k8s.io/v1 Lease per tenant, in the
// namespace of the controller (Config.LeaseNamespace), shared by every shard
// and every namespace. It says which policy owns the tenant; whether that
// owner is still healthy is read from the owner's own status
// (healthyOwner), so the Lease is written only when ownership changes, never
// to renew it.

import (
	"context"
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// RBAC: get, list, watch, create, update and delete on leases in the
// controller's own namespace, from config/rbac/ownership_role.yaml (and the
// chart's -ownership Role). Not a +kubebuilder:rbac marker: a marker's
// namespace is fixed at generation time, and a second (Role) document in the
// generated role.yaml could not follow the install's namespace in the chart.

// Annotations and labels of a tenant Lease. spec.holderIdentity is the
// owner's namespace/name; the annotations pin its UID and creationTimestamp
// so a policy deleted and re-created under the same name is another one,
// and name the policy whose run elected it when that was another one (a
// leaving owner naming its heir; none when the owner claimed the tenant in
// its own run).
const (
	leaseHolderUID     = "ownership.tenantpolicy.io/holder-uid"
	leaseHolderCreated = "ownership.tenantpolicy.io/holder-created"
	leaseNamedBy       = "ownership.tenantpolicy.io/named-by"
	leaseTenantLabel   = "ownership.tenantpolicy.io/tenant"
	leaseManagedBy     = "app.kubernetes.io/managed-by"
	leaseManager       = "purchase-policy-controller"
)

// DefaultLeaseNamespace holds the tenant Leases when no namespace is
// configured (a controller run outside a cluster).
const DefaultLeaseNamespace = "default"

// tenantLeaseName is the Lease of a tenant. Entra compares tenant IDs
// case-insensitively, so the name is built from the lower-case ID: two
// spellings of one tenant share one Lease.
func tenantLeaseName(tenantID string) string {
	return "tenant-" + canonicalTenantID(tenantID)
}

// tenantClaim is a tenant Lease as read: who owns the tenant and since when
// it is known to have synced. A nil *tenantClaim means the tenant has no
// Lease yet.
type tenantClaim struct {
	lease   *coordinationv1.Lease
	holder  types.NamespacedName
	uid     types.UID
	created metav1.Time
	// renewed is when the holder was last known to have synced with the
	// tenant, as written with the claim (its status may not show it yet).
	renewed metav1.Time
	// namedBy is the policy (namespace/name) whose run elected the holder,
	// typically a leaving owner naming its heir; empty when the holder
	// claimed the tenant in its own run.
	namedBy string
}

// heldBy tells whether the claim names the policy with this UID.
func (c *tenantClaim) heldBy(uid types.UID) bool { return c != nil && c.uid != "" && c.uid == uid }

// renewedFor is the claim's sync time for the policy with this UID, nil when
// the claim names another policy.
func (c *tenantClaim) renewedFor(uid types.UID) *metav1.Time {
	if !c.heldBy(uid) {
		return nil
	}
	return &c.renewed
}

// readClaim reads the tenant's Lease uncached: one GET, whatever the fleet
// size. No Lease yet: nil, nil.
func (r *TenantPurchasePolicyReconciler) readClaim(ctx context.Context, tenantID string) (*tenantClaim, error) {
	lease := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: r.leaseNamespace(), Name: tenantLeaseName(tenantID)}
	if err := r.APIReader.Get(ctx, key, lease); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading the ownership Lease %s: %w", key, err)
	}
	return claimOf(lease), nil
}

// claimOf decodes a Lease. A Lease without a readable holder is a claim with
// no owner (anyone may take it, with the List).
func claimOf(lease *coordinationv1.Lease) *tenantClaim {
	c := &tenantClaim{lease: lease, uid: types.UID(lease.Annotations[leaseHolderUID]), namedBy: lease.Annotations[leaseNamedBy]}
	if ns, name, ok := strings.Cut(ptr.Deref(lease.Spec.HolderIdentity, ""), "/"); ok {
		c.holder = types.NamespacedName{Namespace: ns, Name: name}
	} else {
		c.uid = ""
	}
	if t, err := time.Parse(time.RFC3339, lease.Annotations[leaseHolderCreated]); err == nil {
		c.created = metav1.NewTime(t)
	}
	if lease.Spec.RenewTime != nil {
		c.renewed = metav1.NewTime(lease.Spec.RenewTime.Time)
	}
	return c
}

// writeClaim records owner as the tenant's owner, synced at renewed, in the
// run of writer (owner itself, or a leaving owner naming its heir): a
// Create when the tenant has no Lease, else an Update of the Lease as read
// (optimistic lock). Losing a race is a Conflict or AlreadyExists error
// (isClaimRace); nothing is written when owner already holds the claim.
func (r *TenantPurchasePolicyReconciler) writeClaim(ctx context.Context, tenantID string, prev *tenantClaim, owner, writer *v1.TenantPurchasePolicy, renewed time.Time) error {
	if prev.heldBy(owner.UID) {
		return nil
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: r.leaseNamespace(), Name: tenantLeaseName(tenantID)}}
	if prev != nil {
		lease = prev.lease.DeepCopy()
	}
	fillClaim(lease, tenantID, owner, writer, renewed)
	if prev == nil {
		return r.Client.Create(ctx, lease)
	}
	return r.Client.Update(ctx, lease)
}

// fillClaim writes owner into lease: holder, UID, creationTimestamp, the
// writer when it named owner its heir, the time it took the tenant and its
// last known sync; leaseDurationSeconds is how long that sync keeps it the
// owner (two of its intervals).
func fillClaim(lease *coordinationv1.Lease, tenantID string, owner, writer *v1.TenantPurchasePolicy, renewed time.Time) {
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Labels[leaseManagedBy] = leaseManager
	lease.Labels[leaseTenantLabel] = canonicalTenantID(tenantID)
	lease.Annotations[leaseHolderUID] = string(owner.UID)
	lease.Annotations[leaseHolderCreated] = owner.CreationTimestamp.UTC().Format(time.RFC3339)
	if writer.UID != owner.UID {
		lease.Annotations[leaseNamedBy] = writer.Namespace + "/" + writer.Name
	} else {
		delete(lease.Annotations, leaseNamedBy)
	}
	now := metav1.NewMicroTime(renewed)
	if lease.Spec.HolderIdentity != nil {
		lease.Spec.LeaseTransitions = ptr.To(ptr.Deref(lease.Spec.LeaseTransitions, 0) + 1)
	}
	lease.Spec.HolderIdentity = ptr.To(owner.Namespace + "/" + owner.Name)
	lease.Spec.LeaseDurationSeconds = ptr.To(int32(healthWindow(owner) / time.Second))
	lease.Spec.AcquireTime = &now
	lease.Spec.RenewTime = &now
}

// precedes tells whether the claim's holder is older than other's, by the
// order of the election (older).
func (c *tenantClaim) precedes(other *tenantClaim) bool {
	return earlier(c.created, other.created, c.uid, other.uid)
}

// isClaimRace tells whether a Lease write lost to another writer.
func isClaimRace(err error) bool { return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) }

// releaseClaim deletes the tenant's Lease when p holds it (p is leaving:
// its finalizer is released), so Leases of tenants nobody manages any more
// do not pile up. Best effort: a Lease left behind names a policy that no
// longer exists, which the next claimant replaces.
func (r *TenantPurchasePolicyReconciler) releaseClaim(ctx context.Context, p *v1.TenantPurchasePolicy) error {
	claim, err := r.readClaim(ctx, tenantKey(p))
	if err != nil || !claim.heldBy(p.UID) {
		return err
	}
	pre := metav1.Preconditions{UID: &claim.lease.UID, ResourceVersion: &claim.lease.ResourceVersion}
	return client.IgnoreNotFound(r.Client.Delete(ctx, claim.lease, &client.DeleteOptions{Preconditions: &pre}))
}

func (r *TenantPurchasePolicyReconciler) leaseNamespace() string {
	if r.LeaseNamespace != "" {
		return r.LeaseNamespace
	}
	return DefaultLeaseNamespace
}
