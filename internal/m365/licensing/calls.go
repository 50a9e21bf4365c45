package licensing

import (
	"context"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// ListProducts returns the policy of every Microsoft product in the tenant
// (GET .../products?scope=product). It only reads.
func (c *Client) ListProducts(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]Item, error) {
	return c.list(ctx, tenantID, cred, opListProducts, scopeProduct)
}

// ListOfferTypes returns the policy of every third-party offer type in the
// tenant (GET .../products?scope=OfferType). It only reads. Each returned
// item has OfferType set to its key as OfferTypeKey finds it, so callers can
// match items on OfferType alone.
func (c *Client) ListOfferTypes(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]Item, error) {
	items, err := c.list(ctx, tenantID, cred, opListOfferTypes, scopeOfferType)
	if err != nil {
		return nil, err
	}
	for i := range items {
		items[i].OfferType = OfferTypeKey(items[i])
	}
	return items, nil
}

// OfferTypeKey returns the offer type (SaaS, POWERBIVISUALS, ...) an item of
// the offer-type list stands for.
//
// INFERRED: no public source shows the item shape of ?scope=OfferType beyond
// "same shape, keyed by offer type". This takes the offerType field when the
// API sends one and falls back to productId otherwise. Correct it here, and
// only here, once a real answer is seen.
func OfferTypeKey(it Item) string {
	if it.OfferType != "" {
		return it.OfferType
	}
	return it.ProductID
}

// SetProduct sets the policy of one product
// (PUT .../products/{productId} {"policyValue":value}).
//
// Idempotent: setting the value a product already has changes nothing, so a
// call whose outcome is unknown (timeout, reset) may simply be repeated.
func (c *Client) SetProduct(ctx context.Context, tenantID string, cred azcore.TokenCredential, productID, value string) error {
	return c.set(ctx, tenantID, cred, opSetProduct+" "+productID, productsPath, productID, value)
}

// SetOfferType sets the policy of one third-party offer type
// (PUT .../offerTypes/{offerType} {"policyValue":value}).
//
// Idempotent, like SetProduct.
func (c *Client) SetOfferType(ctx context.Context, tenantID string, cred azcore.TokenCredential, offerType, value string) error {
	return c.set(ctx, tenantID, cred, opSetOfferType+" "+offerType, offerTypesPath, offerType, value)
}

// list GETs the product list with the given scope and returns its items.
func (c *Client) list(ctx context.Context, tenantID string, cred azcore.TokenCredential, op, scope string) ([]Item, error) {
	var answer struct {
		Items []Item `json:"items"`
	}
	q := url.Values{scopeParam: {scope}}
	if err := c.call(ctx, callSpec{tenantID: tenantID, cred: cred, op: op, method: http.MethodGet, path: productsPath, query: q, out: &answer}); err != nil {
		return nil, err
	}
	if answer.Items == nil {
		answer.Items = []Item{}
	}
	return answer.Items, nil
}

// set PUTs {"policyValue":value} to collection/key, refusing empty arguments
// without sending anything.
func (c *Client) set(ctx context.Context, tenantID string, cred azcore.TokenCredential, op, collection, key, value string) error {
	if err := checkSetArgs(op, key, value); err != nil {
		return err
	}
	body := struct {
		PolicyValue string `json:"policyValue"`
	}{value}
	return c.call(ctx, callSpec{tenantID: tenantID, cred: cred, op: op, method: http.MethodPut, path: collection + "/" + url.PathEscape(key), in: body})
}
