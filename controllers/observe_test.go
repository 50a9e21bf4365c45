package controllers

import (
	"context"
	"errors"
	"testing"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

func TestObserveTenantRefusesAnEmptyProductList(t *testing.T) {
	adopted := v1.ProductStatus{ProductID: "CFQ7TTC0MM8R", AdoptedValue: "Enabled"}
	noWrite := func(context.Context, string, string) (*licensing.Item, error) {
		t.Fatal("observing must not write")
		return nil, nil
	}
	r := &TenantPurchasePolicyReconciler{}
	p := &v1.TenantPurchasePolicy{}
	p.Status.Products = []v1.ProductStatus{adopted}
	s := &syncState{policy: p, policies: fakePolicies{
		listProducts: func(context.Context) ([]licensing.Item, error) { return []licensing.Item{}, nil },
		setProduct:   noWrite, setOfferType: noWrite,
	}}

	err := r.observeTenant(context.Background(), s)
	if !errors.Is(err, errEmptyProductList) {
		t.Fatalf("an empty product list must fail the run (every tenant has products), got %v", err)
	}
	if _, ok := asStalled(err); ok {
		t.Fatalf("an empty answer is transient (retried with backoff), not Stalled")
	}
	if p.Status.AuthenticatedAt != nil || len(p.Status.Products) != 1 {
		t.Fatalf("nothing may be recorded from an empty answer: %+v", p.Status)
	}
}
