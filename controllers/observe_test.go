package controllers

import (
	"context"
	"errors"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// fakePolicies is a PolicyAPI whose product list is a function; writes fail
// the test.
type fakePolicies struct {
	t    *testing.T
	list func() ([]licensing.Item, error)
}

func (f fakePolicies) ListProducts(context.Context, string, azcore.TokenCredential) ([]licensing.Item, error) {
	return f.list()
}

func (f fakePolicies) ListOfferTypes(context.Context, string, azcore.TokenCredential) ([]licensing.Item, error) {
	return nil, nil
}

func (f fakePolicies) SetProduct(context.Context, string, azcore.TokenCredential, string, string) error {
	f.t.Fatal("observing must not write")
	return nil
}

func (f fakePolicies) SetOfferType(context.Context, string, azcore.TokenCredential, string, string) error {
	f.t.Fatal("observing must not write")
	return nil
}

func TestObserveTenantRefusesAnEmptyProductList(t *testing.T) {
	adopted := v1.ProductStatus{ProductID: "CFQ7TTC0MM8R", AdoptedValue: "Enabled"}
	r := &TenantPurchasePolicyReconciler{Policies: fakePolicies{t: t, list: func() ([]licensing.Item, error) { return []licensing.Item{}, nil }}}
	p := &v1.TenantPurchasePolicy{}
	p.Status.Products = []v1.ProductStatus{adopted}
	s := &syncState{policy: p}

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
