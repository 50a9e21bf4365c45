package controllers

import (
	"context"
	"slices"
	"time"
	gounique "unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
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
// other policies of that tenant are queued so the next owner takes over.
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
	var list v1.TenantPurchasePolicyList
	if err := r.Client.List(ctx, &list, client.MatchingFields{TenantIDField: tenantKey(p)}); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, other := range list.Items {
		if other.UID != p.UID {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&other)})
		}
	}
	return reqs
}
