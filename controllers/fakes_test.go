package controllers

import (
	"context"
	"errors"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// fakePolicies is a TenantPolicies whose calls are function fields (a nil
// list answers nothing; a nil write fails with errUnexpectedWrite).
type fakePolicies struct {
	listProducts   func(ctx context.Context) ([]licensing.Item, error)
	listOfferTypes func(ctx context.Context) ([]licensing.Item, error)
	setProduct     func(ctx context.Context, id, value string) error
	setOfferType   func(ctx context.Context, id, value string) error
}

var errUnexpectedWrite = errors.New("fake: unexpected write")

func (f fakePolicies) ListProducts(ctx context.Context) ([]licensing.Item, error) {
	if f.listProducts == nil {
		return nil, nil
	}
	return f.listProducts(ctx)
}

func (f fakePolicies) ListOfferTypes(ctx context.Context) ([]licensing.Item, error) {
	if f.listOfferTypes == nil {
		return nil, nil
	}
	return f.listOfferTypes(ctx)
}

func (f fakePolicies) SetProduct(ctx context.Context, id, value string) error {
	if f.setProduct == nil {
		return errUnexpectedWrite
	}
	return f.setProduct(ctx, id, value)
}

func (f fakePolicies) SetOfferType(ctx context.Context, id, value string) error {
	if f.setOfferType == nil {
		return errUnexpectedWrite
	}
	return f.setOfferType(ctx, id, value)
}
