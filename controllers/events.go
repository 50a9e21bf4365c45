package controllers

import (
	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const (
	eventNormal  = "Normal"
	eventWarning = "Warning"
	eventAction  = "Reconcile"
)

// event records an Event on the policy. Messages never carry credentials:
// they are built from product IDs, values and typed Microsoft errors.
func (r *TenantPurchasePolicyReconciler) event(p *v1.TenantPurchasePolicy, eventType, reason, format string, args ...any) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(p, nil, eventType, reason, eventAction, format, args...)
}
