package controllers

import (
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
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

func TestCacheTransformCompactsStatus(t *testing.T) {
	decoded := func() *v1.TenantPurchasePolicy {
		// As the JSON decoder leaves them: lists with spare capacity, every
		// string its own copy.
		products := make([]v1.ProductStatus, 0, 32)
		for _, id := range []string{"CFQ7TTC0KP0N", "CFQ7TTC0MM8R"} {
			at := metav1.NewTime(time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC))
			products = append(products, v1.ProductStatus{ProductID: string([]byte(id)), Name: string([]byte("Microsoft 365 Copilot")),
				Desired: v1.PolicyDisabled, Observed: string([]byte("Disabled")), Source: v1.SourceDefault, Corrections: 1,
				AdoptedAt: &at, LastCorrectionTime: at.DeepCopy(), LastWriteTime: at.DeepCopy()})
		}
		return &v1.TenantPurchasePolicy{Status: v1.TenantPurchasePolicyStatus{Products: products}}
	}
	a, b := decoded(), decoded()
	want := a.DeepCopy()
	for _, p := range []*v1.TenantPurchasePolicy{a, b} {
		if _, err := CacheTransform(p); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("the cache must hold the status unchanged:\n got %+v\nwant %+v", a.Status, want.Status)
	}
	if got := cap(a.Status.Products); got > 4 {
		t.Errorf("2 products cached with capacity %d: the decoder's spare capacity is kept", got)
	}
	if unsafe.StringData(a.Status.Products[0].Name) != unsafe.StringData(b.Status.Products[0].Name) {
		t.Error("two cached policies hold separate copies of one product name")
	}
	if ps := a.Status.Products; ps[0].AdoptedAt != ps[1].LastWriteTime {
		t.Error("one policy holds one allocation per equal timestamp")
	}
}
