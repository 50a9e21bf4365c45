package controllers

import (
	"context"
	"slices"
	"time"
	gounique "unique"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// Backoff for transient errors: from about 1s, doubling, at most 5 minutes.
const (
	backoffBase = time.Second
	backoffMax  = 5 * time.Minute
)

// SetupWithManager registers the controller. It runs on spec changes,
// deletions and the reconcile-now annotation, not on its own status writes;
// when an Enforce policy leaves a tenant (deleted or set to Observe) the
// other policies of that tenant are queued so the next owner takes over;
// when a tenant's Lease changes hands or goes, in this replica or in another
// shard, the policies it concerns are queued (tenantLeaseEvents).
func (r *TenantPurchasePolicyReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1.TenantPurchasePolicy{}, TenantIDField, indexTenantID); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("tenantpurchasepolicy").
		For(&v1.TenantPurchasePolicy{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{}, // reconcile.tenantpolicy.io/requestedAt
		))).
		Watches(&v1.TenantPurchasePolicy{}, handler.EnqueueRequestsFromMapFunc(r.sameTenant), builder.WithPredicates(ownerLeft)).
		Watches(&coordinationv1.Lease{}, r.tenantLeaseEvents(), builder.WithPredicates(predicate.NewPredicateFuncs(r.isTenantLease))).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: maxConcurrent,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](backoffBase, backoffMax),
		}).
		Complete(r)
}

// CacheTransform trims each object before the manager's cache stores it to
// what the controller reads: managed fields and kubectl's
// last-applied-configuration annotation (a second copy of the whole spec)
// are dropped, which keeps the cache of a large fleet small. Patches are
// computed between two cached copies, so they never touch either.
func CacheTransform(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil // a tombstone: nothing to trim
	}
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	if a := obj.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" {
		delete(a, corev1.LastAppliedConfigAnnotation)
		obj.SetAnnotations(a)
	}
	if p, ok := in.(*v1.TenantPurchasePolicy); ok {
		compactStatus(&p.Status)
	}
	return in, nil
}

// compactStatus shrinks a cached policy's status without changing it: the
// JSON decoder leaves each list with up to twice its length in capacity,
// gives every policy its own copy of strings the fleet shares (product IDs
// and names, policy values, condition reasons and messages) and every
// timestamp its own allocation, though one run stamps all its products with
// the same instant. At 10,000 policies of 20 products that is about 100 MiB
// of the controller's heap (make bench at N=10,000). Cached objects are
// read-only (the client hands out deep copies), so sharing is safe.
func compactStatus(st *v1.TenantPurchasePolicyStatus) {
	st.Conditions = slices.Clone(st.Conditions)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.Type, c.Reason, c.Message = intern(c.Type), intern(c.Reason), intern(c.Message)
	}
	st.DriftHistory = slices.Clone(st.DriftHistory)
	st.TenantSettings = slices.Clone(st.TenantSettings)
	stamps := map[time.Time]*metav1.Time{}
	shared := func(t **metav1.Time) {
		if *t == nil {
			return
		}
		if s, ok := stamps[(*t).Time]; ok {
			*t = s
			return
		}
		stamps[(*t).Time] = *t
	}
	for _, list := range []*[]v1.ProductStatus{&st.Products, &st.OfferTypes} {
		*list = slices.Clone(*list)
		for i := range *list {
			ps := &(*list)[i]
			ps.ProductID, ps.Name, ps.Observed, ps.AdoptedValue = intern(ps.ProductID), intern(ps.Name), intern(ps.Observed), intern(ps.AdoptedValue)
			ps.Desired, ps.Source = v1.PolicyValue(intern(string(ps.Desired))), v1.DesiredSource(intern(string(ps.Source)))
			for _, t := range []**metav1.Time{&ps.AdoptedAt, &ps.LastCorrectionTime, &ps.LastWriteTime, &ps.RejectedAt, &ps.MissingSince} {
				shared(t)
			}
		}
	}
	if sub := st.Subscriptions; sub != nil {
		sub.SelfService = slices.Clone(sub.SelfService)
		sub.Handovers = slices.Clone(sub.Handovers)
	}
}

// intern returns the canonical copy of s (unique.Make), shared by every
// cached policy that holds the same text.
func intern(s string) string {
	if s == "" {
		return s
	}
	return gounique.Make(s).Value()
}

// ownerLeft passes deletions and spec changes, the events after which another
// policy may own a tenant.
var ownerLeft = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() ||
			e.ObjectOld.GetDeletionTimestamp().IsZero() != e.ObjectNew.GetDeletionTimestamp().IsZero()
	},
}

// sameTenant queues the other policies of the object's tenant.
func (r *TenantPurchasePolicyReconciler) sameTenant(ctx context.Context, o client.Object) []reconcile.Request {
	p, ok := o.(*v1.TenantPurchasePolicy)
	if !ok {
		return nil
	}
	return r.tenantPolicies(ctx, tenantKey(p), func(other *v1.TenantPurchasePolicy) bool { return other.UID != p.UID })
}

// tenantPolicies are the requests of this replica's cached policies of the
// tenant (canonical ID) that keep passes.
func (r *TenantPurchasePolicyReconciler) tenantPolicies(ctx context.Context, tenant string, keep func(*v1.TenantPurchasePolicy) bool) []reconcile.Request {
	var list v1.TenantPurchasePolicyList
	if err := r.Client.List(ctx, &list, client.MatchingFields{TenantIDField: tenant}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if p := &list.Items[i]; keep(p) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
	}
	return reqs
}

// tenantLeaseEvents queues the policies a tenant Lease's change concerns,
// whichever replica or shard wrote it: the Lease is the one object every
// shard sees, while a policy in another shard is invisible here (leaseWakes).
// When the Lease goes (its owner left with no healthy heir), every policy
// of the tenant, so one may claim it. Creates are a tenant's first claim
// and concern nobody else; a replica's start lists every Lease as created,
// which queues nothing.
func (r *TenantPurchasePolicyReconciler) tenantLeaseEvents() handler.EventHandler {
	queue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], reqs []reconcile.Request) {
		for _, req := range reqs {
			q.Add(req)
		}
	}
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			wake, ok := leaseWakes(e.ObjectOld, e.ObjectNew)
			if !ok {
				return
			}
			queue(q, r.tenantPolicies(ctx, e.ObjectNew.GetLabels()[leaseTenantLabel], func(p *v1.TenantPurchasePolicy) bool {
				return client.ObjectKeyFromObject(p) == wake
			}))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			queue(q, r.tenantPolicies(ctx, e.Object.GetLabels()[leaseTenantLabel], func(*v1.TenantPurchasePolicy) bool { return true }))
		},
	}
}

// leaseWakes is the policy a tenant Lease changing hands concerns, other
// than the one whose run wrote it: a holder another policy's run elected
// (the heir a leaving owner named), or the holder an older policy took the
// tenant back from (a newer one that claimed it while the older had not run
// yet), which learns it lost. A policy that took the tenant from an owner
// that was no longer healthy concerns nobody: that owner learns it at its
// next run, as it would alone, and is not handed an extra run to take the
// tenant back in the middle of the new owner's writes.
func leaseWakes(before, after client.Object) (types.NamespacedName, bool) {
	was, okWas := before.(*coordinationv1.Lease)
	is, okIs := after.(*coordinationv1.Lease)
	if !okWas || !okIs {
		return types.NamespacedName{}, false
	}
	from, to := claimOf(was), claimOf(is)
	switch {
	case from.holder == to.holder:
		return types.NamespacedName{}, false
	case to.namedBy != "":
		return to.holder, true
	case to.precedes(from):
		return from.holder, from.holder != types.NamespacedName{}
	}
	return types.NamespacedName{}, false
}

// isTenantLease passes the tenant Leases of this controller's Lease
// namespace: all a cache built with LeaseCache holds, and the same in a
// cache without that restriction.
func (r *TenantPurchasePolicyReconciler) isTenantLease(o client.Object) bool {
	return o.GetNamespace() == r.leaseNamespace() && o.GetLabels()[leaseTenantLabel] != ""
}

// LeaseCache is what the manager's cache holds of Leases: the tenant Leases
// of the Lease namespace, which every shard shares (not the leader-election
// Lease, not other namespaces). The watch on them needs list and watch on
// leases in that namespace (config/rbac/ownership_role.yaml).
func LeaseCache(namespace string) cache.ByObject {
	tenant, _ := labels.NewRequirement(leaseTenantLabel, selection.Exists, nil)
	return cache.ByObject{Namespaces: map[string]cache.Config{namespace: {}}, Label: labels.NewSelector().Add(*tenant)}
}
