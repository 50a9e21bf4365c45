package controllers

import (
	"context"
	"errors"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// fakePolicies is a TenantPolicies whose calls are function fields (a nil
// list answers nothing; a nil write fails with errUnexpectedWrite).
type fakePolicies struct {
	listProducts   func(ctx context.Context) ([]licensing.Item, error)
	listOfferTypes func(ctx context.Context) ([]licensing.Item, error)
	setProduct     writeFunc
	setOfferType   writeFunc
}

var errUnexpectedWrite = errors.New("fake: unexpected write")

func (f fakePolicies) ListProducts(ctx context.Context) ([]licensing.Item, m365.ListInfo, error) {
	if f.listProducts == nil {
		return nil, m365.ListInfo{}, nil
	}
	items, err := f.listProducts(ctx)
	return items, m365.ListInfo{}, err
}

func (f fakePolicies) ListOfferTypes(ctx context.Context) ([]licensing.Item, m365.ListInfo, error) {
	if f.listOfferTypes == nil {
		return nil, m365.ListInfo{}, nil
	}
	items, err := f.listOfferTypes(ctx)
	return items, m365.ListInfo{}, err
}

func (f fakePolicies) SetProduct(ctx context.Context, id, value string) (*licensing.Item, error) {
	if f.setProduct == nil {
		return nil, errUnexpectedWrite
	}
	return f.setProduct(ctx, id, value)
}

func (f fakePolicies) SetOfferType(ctx context.Context, id, value string) (*licensing.Item, error) {
	if f.setOfferType == nil {
		return nil, errUnexpectedWrite
	}
	return f.setOfferType(ctx, id, value)
}

// applies answers a write as Microsoft does when it applied it: 200 with the
// item at the value written.
func applies(_ context.Context, id, value string) (*licensing.Item, error) {
	return &licensing.Item{ProductID: id, PolicyValue: value}, nil
}
