package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

func TestCacheTransform(t *testing.T) {
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{
		Name:          "p",
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation: `{"spec":{"tenantID":"..."}}`,
			v1.RequestedAtAnnotation:           "1",
		},
	}}
	out, err := CacheTransform(p)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1.TenantPurchasePolicy)
	if got.ManagedFields != nil {
		t.Error("managed fields are kept in the cache: they are most of a small object's size")
	}
	if _, ok := got.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
		t.Error("kubectl's last-applied-configuration (a copy of the spec) is kept in the cache")
	}
	if got.Annotations[v1.RequestedAtAnnotation] != "1" {
		t.Error("the reconcile-now annotation must survive: the controller acts on it")
	}
	tomb := toolscache.DeletedFinalStateUnknown{Key: "ns/p"}
	if out, err := CacheTransform(tomb); err != nil || out != tomb {
		t.Errorf("a tombstone must pass unchanged: %v, %v", out, err)
	}
}
