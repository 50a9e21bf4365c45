package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
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
		if st, lost := asStalled(err); lost {
			r.event(p, eventWarning, v1.EventRestoreSkipped, "%s: restoring would fight it, tenant left as it is", st.message)
			return true, nil
		}
		return false, err
	}
	tenant := p.Spec.TenantID
	products, err := r.restoreList(ctx, p.Status.Products, s.products, func(ctx context.Context, id, v string) error {
		return r.Policies.SetProduct(ctx, tenant, s.cred, id, v)
	})
	if err != nil {
		return false, err
	}
	offers := 0
	if len(p.Status.OfferTypes) > 0 {
		current, err := r.Policies.ListOfferTypes(ctx, tenant, s.cred)
		if err != nil {
			return false, classify(err)
		}
		if offers, err = r.restoreList(ctx, p.Status.OfferTypes, current, func(ctx context.Context, id, v string) error {
			return r.Policies.SetOfferType(ctx, tenant, s.cred, id, v)
		}); err != nil {
			return false, err
		}
	}
	r.event(p, eventNormal, v1.EventRestored, "restored %d products and %d offer types of tenant %s to their values at adoption", products, offers, tenant)
	return true, nil
}

// restoreList writes back the adoption value of every entry that has one and
// differs now. Entries Microsoft no longer knows or refuses for good are
// skipped; anything else stops the restore.
func (r *TenantPurchasePolicyReconciler) restoreList(ctx context.Context, entries []v1.ProductStatus, items []licensing.Item, write writeFunc) (int, error) {
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
		if err := write(ctx, ps.ProductID, ps.AdoptedValue); err != nil {
			if k := m365.KindOf(err); k == m365.NotFound || k == m365.BadRequest {
				continue
			}
			return restored, classify(fmt.Errorf("restoring %s to %s: %w", ps.ProductID, ps.AdoptedValue, err))
		}
		restored++
	}
	return restored, nil
}

func credentialsMissing(reason string) bool {
	switch reason {
	case v1.ReasonSecretNotFound, v1.ReasonSecretKeyNotFound, v1.ReasonServiceAccountNotFound:
		return true
	}
	return false
}

// keepFinalizer records why deletion waits and tries again: after the
// Retry-After when throttled, otherwise with the controller's backoff (from
// 1 s up to 5 minutes), so a person who fixes the cause sees it finish soon.
func (r *TenantPurchasePolicyReconciler) keepFinalizer(ctx context.Context, s *syncState, err error) (reconcile.Result, error) {
	s.err = err
	setReadiness(s)
	msg := fmt.Sprintf("deletionPolicy Restore could not finish, finalizer kept: %v", err)
	meta.SetStatusCondition(&s.policy.Status.Conditions, metav1.Condition{Type: v1.ReadyCondition, Status: metav1.ConditionFalse,
		Reason: v1.ReasonDeleting, Message: msg, ObservedGeneration: s.policy.Generation})
	if patchErr := r.patchStatus(ctx, s); patchErr != nil {
		return requeueOnConflict(patchErr)
	}
	if w, ok := asWait(err); ok {
		return reconcile.Result{RequeueAfter: throttleRequeue(w.after)}, nil
	}
	return reconcile.Result{}, err
}
