package controllers

import (
	"context"
	"errors"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// NewSetReconciler builds the set reconciler beside the policy reconciler
// r: it loads discovery credentials through r and lists customers through
// r's Graph client, so both share the token caches and the not-before gate.
func NewSetReconciler(mgr ctrl.Manager, r *TenantPurchasePolicyReconciler) (*TenantPurchasePolicySetReconciler, error) {
	partners, ok := r.Directory.(PartnerAPI)
	if !ok {
		return nil, errors.New("the policy reconciler's Directory cannot list partner customers")
	}
	return &TenantPurchasePolicySetReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Recorder:         mgr.GetEventRecorder(reportingController),
		Partners:         partners,
		Credentials:      r,
		Now:              r.Now,
		ReconcileTimeout: r.ReconcileTimeout,
	}, nil
}

// SetupWithManager registers the set controller. It runs on spec changes,
// deletions and the reconcile-now annotation of a set, not on its own status
// writes, and on its children: at once when one is deleted or edited (spec,
// labels, owner: the set restores it), after the coalescing window when
// what the set reports of it changed (its conditions, counts, refund
// windows). Children's periodic syncs that change nothing the set reports
// cost nothing.
func (r *TenantPurchasePolicySetReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrent int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("tenantpurchasepolicyset").
		For(&v1.TenantPurchasePolicySet{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
		))).
		Watches(&v1.TenantPurchasePolicy{}, r.childEvents()).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: maxConcurrent,
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](backoffBase, backoffMax),
		}).
		Complete(r)
}

// childEvents queues the set that controls a changed policy.
func (r *TenantPurchasePolicySetReconciler) childEvents() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	later := r.coalesce()
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q queue) {
			if req, ok := ownerSet(e.Object); ok {
				q.AddAfter(req, later)
			}
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q queue) {
			req, ok := ownerSet(e.ObjectNew)
			if !ok {
				req, ok = ownerSet(e.ObjectOld) // the set's reference was removed by hand
			}
			switch {
			case !ok:
			case edited(e.ObjectOld, e.ObjectNew):
				q.Add(req)
			case fleetViewChanged(e.ObjectOld, e.ObjectNew):
				q.AddAfter(req, later)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q queue) {
			if req, ok := ownerSet(e.Object); ok {
				q.Add(req)
			}
		},
	}
}

// ownerSet is the set that controls o.
func ownerSet(o client.Object) (reconcile.Request, bool) {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != "TenantPurchasePolicySet" || ref.APIVersion != v1.GroupVersion.String() {
		return reconcile.Request{}, false
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name}}, true
}

// edited tells whether a child changed where the set decides: its spec
// (generation), labels, owner references or deletion.
func edited(old, cur client.Object) bool {
	return old.GetGeneration() != cur.GetGeneration() ||
		!equality.Semantic.DeepEqual(old.GetLabels(), cur.GetLabels()) ||
		!equality.Semantic.DeepEqual(old.GetOwnerReferences(), cur.GetOwnerReferences()) ||
		old.GetDeletionTimestamp().IsZero() != cur.GetDeletionTimestamp().IsZero()
}

// fleetViewChanged tells whether anything the set reports of a child
// changed: observed generation, the Ready, Stalled, Conflict and Drifted
// conditions, the self-service count or the refund windows.
func fleetViewChanged(old, cur client.Object) bool {
	a, okA := old.(*v1.TenantPurchasePolicy)
	b, okB := cur.(*v1.TenantPurchasePolicy)
	if !okA || !okB {
		return true
	}
	return !equality.Semantic.DeepEqual(fleetView(a), fleetView(b))
}

// childView is the part of a child's status the set reads.
// Its fields are exported for equality.Semantic, which cannot compare
// unexported times.
type childView struct {
	ObservedGeneration int64
	Conditions         []metav1.Condition
	SelfService        int32
	Refunds            []*metav1.Time
}

func fleetView(p *v1.TenantPurchasePolicy) childView {
	v := childView{ObservedGeneration: p.Status.ObservedGeneration, SelfService: p.Status.Summary.SelfServiceSubscriptions}
	for _, t := range []string{v1.ReadyCondition, v1.StalledCondition, v1.ConflictCondition, v1.DriftedCondition} {
		if c := meta.FindStatusCondition(p.Status.Conditions, t); c != nil {
			cp := metav1.Condition{Type: c.Type, Status: c.Status, Reason: c.Reason}
			if c.Status != metav1.ConditionTrue || t != v1.ReadyCondition {
				cp.Message = c.Message // notReady shows it
			}
			v.Conditions = append(v.Conditions, cp)
		}
	}
	if p.Status.Subscriptions != nil {
		for _, s := range p.Status.Subscriptions.SelfService {
			if activeStatus(s.Status) {
				v.Refunds = append(v.Refunds, s.FullRefundUntil)
			}
		}
	}
	slices.SortFunc(v.Conditions, func(a, b metav1.Condition) int {
		if a.Type < b.Type {
			return -1
		}
		return 1
	})
	return v
}
