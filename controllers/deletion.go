package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// restoreAttemptsWithoutCredentials is how many deletion attempts may find
// the credentials missing before the finalizer is released without restoring.
const restoreAttemptsWithoutCredentials = 3

// reconcileDelete runs deletionPolicy and releases the finalizer. Orphan
// leaves the tenant as it is. Restore writes back the adoption values of the
// products this policy adopted; if the credentials stay missing for 3
// attempts it gives up with a RestoreSkipped Warning; any other failure keeps
// the finalizer and says why in the conditions.
func (r *TenantPurchasePolicyReconciler) reconcileDelete(ctx context.Context, policy *v1.TenantPurchasePolicy) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(policy, v1.Finalizer) {
		return reconcile.Result{}, nil
	}
	if policy.Spec.DeletionPolicy == v1.DeletionRestore && policy.Spec.Mode == v1.ModeEnforce {
		s := &syncState{policy: policy, base: policy.DeepCopy(), now: r.now()}
		if done, err := r.restore(ctx, s); !done {
			return r.keepFinalizer(ctx, s, err)
		}
	}
	r.Metrics.forget(policy)
	if err := r.patchFinalizer(ctx, policy, controllerutil.RemoveFinalizer); err != nil && !apierrors.IsNotFound(err) {
		return requeueOnConflict(err)
	}
	return reconcile.Result{}, nil
}

// restore writes back adoption values. done is true when the finalizer may go.
func (r *TenantPurchasePolicyReconciler) restore(ctx context.Context, s *syncState) (done bool, err error) {
	p := s.policy
	if p.Spec.Suspend {
		r.event(p, eventWarning, v1.EventRestoreSkipped, "policy is suspended: no calls to Microsoft, tenant left as it is")
		return true, nil
	}
	if err := r.loadCredentials(ctx, s); err != nil {
		if st, ok := asStalled(err); ok && credentialsMissing(st.reason) {
			p.Status.RestoreAttempts++
			if p.Status.RestoreAttempts >= restoreAttemptsWithoutCredentials {
				r.event(p, eventWarning, v1.EventRestoreSkipped, "credentials missing for %d attempts (%s): tenant left as it is", p.Status.RestoreAttempts, st.message)
				return true, nil
			}
		}
		return false, err
	}
	if err := r.observeTenant(ctx, s); err != nil {
		return false, err
	}
	if err := r.resolveOwnership(ctx, s); err != nil {
		if _, lost := asStalled(err); lost {
			return true, nil // another policy owns the tenant; restoring would fight it
		}
		return false, err
	}
	current := make(map[string]string, len(s.products))
	for _, item := range s.products {
		current[item.ProductID] = item.PolicyValue
	}
	restored := 0
	for _, ps := range p.Status.Products {
		v, ok := current[ps.ProductID]
		if ps.AdoptedValue == "" || !ok || v == ps.AdoptedValue || ps.Source == v1.SourceUnmanaged {
			continue
		}
		if err := r.Policies.SetProduct(ctx, p.Spec.TenantID, s.cred, ps.ProductID, ps.AdoptedValue); err != nil {
			if m365.KindOf(err) == m365.NotFound {
				continue
			}
			return false, classify(fmt.Errorf("restoring %s to %s: %w", ps.ProductID, ps.AdoptedValue, err))
		}
		restored++
	}
	r.event(p, eventNormal, v1.EventRestored, "restored %d products of tenant %s to their values at adoption", restored, p.Spec.TenantID)
	return true, nil
}

func credentialsMissing(reason string) bool {
	switch reason {
	case v1.ReasonSecretNotFound, v1.ReasonSecretKeyNotFound, v1.ReasonServiceAccountNotFound:
		return true
	}
	return false
}

// keepFinalizer records why deletion waits and schedules another attempt.
func (r *TenantPurchasePolicyReconciler) keepFinalizer(ctx context.Context, s *syncState, err error) (reconcile.Result, error) {
	s.err = err
	setReadiness(s)
	msg := fmt.Sprintf("deletionPolicy Restore could not finish, finalizer kept: %v", err)
	meta.SetStatusCondition(&s.policy.Status.Conditions, metav1.Condition{Type: v1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: v1.ReasonDeleting, Message: msg, ObservedGeneration: s.policy.Generation})
	if patchErr := r.Client.Status().Patch(ctx, s.policy, ctrl.MergeFromWithOptions(s.base, ctrl.MergeFromWithOptimisticLock{})); patchErr != nil {
		return requeueOnConflict(patchErr)
	}
	if w, ok := asWait(err); ok {
		return reconcile.Result{RequeueAfter: w.after + time.Second}, nil
	}
	if _, ok := asStalled(err); ok {
		return reconcile.Result{RequeueAfter: restoreRetry}, nil
	}
	return reconcile.Result{}, err
}

// restoreRetry spaces deletion attempts that wait for a person.
const restoreRetry = 10 * time.Second
