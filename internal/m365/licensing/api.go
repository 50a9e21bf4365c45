package licensing

// The calls of the policy API, bound to one tenant and credential. How one
// request is sent (token, gate, timeout, error mapping) is in transport.go.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Tenant is the policy API of one tenant, called with one credential: the
// handle a reconcile (or a command-line tool) uses for one run. Get it from
// Client.For; it is a small value and costs nothing to make.
type Tenant struct {
	c        *Client
	tenantID string
	cred     azcore.TokenCredential
}

// For returns the API of tenantID, every call authenticated with cred.
func (c *Client) For(tenantID string, cred azcore.TokenCredential) Tenant {
	return Tenant{c: c, tenantID: tenantID, cred: cred}
}

// ListProducts returns the policy of every Microsoft product in the tenant
// (GET .../products?scope=product), one item per product ID in the order of
// the answer, with info on what the answer held beyond them (duplicates,
// invalid items, cut names: see decodeList). It only reads.
func (t Tenant) ListProducts(ctx context.Context) ([]Item, m365.ListInfo, error) {
	return t.list(ctx, opListProducts, scopeProduct, false)
}

// ListOfferTypes returns the policy of every third-party offer type in the
// tenant (GET .../products?scope=OfferType), like ListProducts. Each item has
// OfferType set to its key as OfferTypeKey finds it, so callers can match
// items on OfferType alone; items are unique by it.
func (t Tenant) ListOfferTypes(ctx context.Context) ([]Item, m365.ListInfo, error) {
	return t.list(ctx, opListOfferTypes, scopeOfferType, true)
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
// (PUT .../products/{productId} {"policyValue":value}) and returns the item
// Microsoft answered with, or nil when the answer carried none (an empty or
// unreadable 2xx body, an item without a policy value or for another
// product). The answer is Microsoft's word, not proof: a read confirms it.
//
// Idempotent: setting the value a product already has changes nothing, so a
// call whose outcome is unknown (timeout, reset) may simply be repeated.
func (t Tenant) SetProduct(ctx context.Context, productID, value string) (*Item, error) {
	return t.set(ctx, opSetProduct+" "+productID, productsPath, productID, value)
}

// SetOfferType sets the policy of one third-party offer type
// (PUT .../offerTypes/{offerType} {"policyValue":value}) and returns the
// item answered, like SetProduct.
//
// Idempotent, like SetProduct.
func (t Tenant) SetOfferType(ctx context.Context, offerType, value string) (*Item, error) {
	return t.set(ctx, opSetOfferType+" "+offerType, offerTypesPath, offerType, value)
}

// list GETs the product list with the given scope and decodes its items.
func (t Tenant) list(ctx context.Context, op, scope string, offerTypes bool) ([]Item, m365.ListInfo, error) {
	var (
		items []Item
		info  m365.ListInfo
	)
	decode := func(body []byte) (err error) {
		items, info, err = decodeList(body, offerTypes)
		return err
	}
	q := url.Values{scopeParam: {scope}}
	if err := t.c.call(ctx, callSpec{tenantID: t.tenantID, cred: t.cred, op: op, method: http.MethodGet, path: productsPath, query: q, decode: decode}); err != nil {
		return nil, m365.ListInfo{}, err
	}
	return items, info, nil
}

// set PUTs {"policyValue":value} to collection/key, refusing empty arguments
// without sending anything, and returns the item answered (see SetProduct).
// A 2xx whose body cannot be read as an item was still accepted: it returns
// no item and no error.
func (t Tenant) set(ctx context.Context, op, collection, key, value string) (*Item, error) {
	if err := checkSetArgs(op, key, value); err != nil {
		return nil, err
	}
	body := struct {
		PolicyValue string `json:"policyValue"`
	}{value}
	var answer Item
	var parsed bool
	decode := func(b []byte) error { parsed = json.Unmarshal(b, &answer) == nil; return nil }
	if err := t.c.call(ctx, callSpec{tenantID: t.tenantID, cred: t.cred, op: op, method: http.MethodPut, path: collection + "/" + url.PathEscape(key), in: body, decode: decode}); err != nil {
		return nil, err
	}
	if !parsed {
		return nil, nil // accepted; the answer is not an item
	}
	return echoOf(answer, key), nil
}

// echoOf returns the answer to a PUT of key when it is an item of key with a
// policy value, nil otherwise.
func echoOf(answer Item, key string) *Item {
	named := answer.ProductID
	if answer.OfferType != "" {
		named = answer.OfferType
	}
	if answer.PolicyValue == "" || named != "" && !strings.EqualFold(named, key) {
		return nil
	}
	return &answer
}

// checkSetArgs refuses a PUT with an empty key or value before anything is sent.
func checkSetArgs(op, key, value string) error {
	switch {
	case key == "":
		return &m365.Error{Kind: m365.BadRequest, Op: op, Reason: reasonEmptyKey}
	case value == "":
		return &m365.Error{Kind: m365.BadRequest, Op: op, Reason: reasonEmptyValue}
	}
	return nil
}
