// Package v1alpha1 is the API of the commerce.tenantpolicy.io group:
// TenantPurchasePolicy and TenantPurchasePolicySet, their validation (CEL
// rules, enums, bounds), the condition types and reasons, and the bounds
// status is kept within. It decides what a valid spec is and what status may
// hold; it must not hold reconcile logic, call Microsoft or read a cluster.
// +kubebuilder:object:generate=true
// +groupName=commerce.tenantpolicy.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "commerce.tenantpolicy.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
