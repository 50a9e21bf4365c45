package licensing_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// seenRequest is what the server received, minus the correlation id, which
// is checked apart because it is random.
type seenRequest struct {
	Method        string
	RawPath       string
	RawQuery      string
	Authorization string
	Accept        string
	ContentType   string
	Body          string
}

func TestWire(t *testing.T) {
	cases := map[string]struct {
		reason    string
		answer    string
		call      func(context.Context, *licensing.Client, *staticCred) (any, error)
		wantReq   seenRequest
		wantItems any
	}{
		"list products": {
			reason: "GET products?scope=product, decoded whatever the field casing",
			answer: `{"Items":[{"PolicyId":"AllowSelfServicePurchase","policyValue":"Enabled","productName":"Microsoft 365 Copilot","productID":"CFQ7TTC0MM8R","extra":1},` +
				`{"policyId":"AllowSelfServicePurchase","policyValue":"Disabled","productName":"Power BI Pro","productId":"CFQ7TTC0H9MP"}]}`,
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				items, _, err := c.For(testTenant, cred).ListProducts(ctx)
				return items, err
			},
			wantReq: seenRequest{Method: "GET", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products", RawQuery: "scope=product",
				Authorization: "Bearer " + testToken, Accept: "application/json"},
			wantItems: []licensing.Item{
				{PolicyID: "AllowSelfServicePurchase", PolicyValue: "Enabled", ProductName: "Microsoft 365 Copilot", ProductID: "CFQ7TTC0MM8R"},
				{PolicyID: "AllowSelfServicePurchase", PolicyValue: "Disabled", ProductName: "Power BI Pro", ProductID: "CFQ7TTC0H9MP"},
			},
		},
		"list products, none": {
			reason: "an empty list is an empty slice, not an error",
			answer: `{"items":[]}`,
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				items, _, err := c.For(testTenant, cred).ListProducts(ctx)
				return items, err
			},
			wantReq: seenRequest{Method: "GET", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products", RawQuery: "scope=product",
				Authorization: "Bearer " + testToken, Accept: "application/json"},
			wantItems: []licensing.Item{},
		},
		"list offer types": {
			reason: "GET products?scope=OfferType; every item gets its offer type key",
			answer: `{"items":[{"policyId":"AllowSelfServicePurchase","policyValue":"Enabled","productName":"SaaS","productId":"SaaS"},` +
				`{"policyId":"AllowSelfServicePurchase","policyValue":"Disabled","productName":"Power BI visuals","productId":"x","offerType":"POWERBIVISUALS"}]}`,
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				items, _, err := c.For(testTenant, cred).ListOfferTypes(ctx)
				return items, err
			},
			wantReq: seenRequest{Method: "GET", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products", RawQuery: "scope=OfferType",
				Authorization: "Bearer " + testToken, Accept: "application/json"},
			wantItems: []licensing.Item{
				{PolicyID: "AllowSelfServicePurchase", PolicyValue: "Enabled", ProductName: "SaaS", ProductID: "SaaS", OfferType: "SaaS"},
				{PolicyID: "AllowSelfServicePurchase", PolicyValue: "Disabled", ProductName: "Power BI visuals", ProductID: "x", OfferType: "POWERBIVISUALS"},
			},
		},
		"set product": {
			reason: "PUT products/{id} with the value as JSON; the item answered is returned",
			answer: `{"policyId":"AllowSelfServicePurchase","policyValue":"Disabled","productId":"CFQ7TTC0MM8R"}`,
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				return c.For(testTenant, cred).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
			},
			wantReq: seenRequest{Method: "PUT", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products/CFQ7TTC0MM8R",
				Authorization: "Bearer " + testToken, Accept: "application/json", ContentType: "application/json",
				Body: `{"policyValue":"Disabled"}`},
			wantItems: &licensing.Item{PolicyID: "AllowSelfServicePurchase", PolicyValue: "Disabled", ProductID: "CFQ7TTC0MM8R"},
		},
		"set product, old value answered": {
			reason: "an answer with another value is returned as it is: the caller must not count the write",
			answer: `{"policyValue":"Enabled","productId":"cfq7ttc0mm8r"}`,
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				return c.For(testTenant, cred).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
			},
			wantReq: seenRequest{Method: "PUT", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products/CFQ7TTC0MM8R",
				Authorization: "Bearer " + testToken, Accept: "application/json", ContentType: "application/json",
				Body: `{"policyValue":"Disabled"}`},
			wantItems: &licensing.Item{PolicyValue: "Enabled", ProductID: "cfq7ttc0mm8r"},
		},
		"set product, odd id": {
			reason: "the product ID is one escaped path segment, never a path or query",
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				return c.For(testTenant, cred).SetProduct(ctx, "../x?y z", licensing.ValueEnabled)
			},
			wantReq: seenRequest{Method: "PUT", RawPath: "/v1.0/policies/AllowSelfServicePurchase/products/..%2Fx%3Fy%20z",
				Authorization: "Bearer " + testToken, Accept: "application/json", ContentType: "application/json",
				Body: `{"policyValue":"Enabled"}`},
		},
		"set offer type": {
			reason: "PUT offerTypes/{offerType} with the value as JSON",
			call: func(ctx context.Context, c *licensing.Client, cred *staticCred) (any, error) {
				return c.For(testTenant, cred).SetOfferType(ctx, "SaaS", licensing.ValueOnlyTrialsWithoutPaymentMethod)
			},
			wantReq: seenRequest{Method: "PUT", RawPath: "/v1.0/policies/AllowSelfServicePurchase/offerTypes/SaaS",
				Authorization: "Bearer " + testToken, Accept: "application/json", ContentType: "application/json",
				Body: `{"policyValue":"OnlyTrialsWithoutPaymentMethod"}`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got seenRequest
			var correlation string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seenRequest{Method: r.Method, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
					Authorization: r.Header.Get("Authorization"), Accept: r.Header.Get("Accept"),
					ContentType: r.Header.Get("Content-Type"), Body: string(b)}
				correlation = r.Header.Get("x-ms-correlation-id")
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tc.answer)
			})
			cred := &staticCred{}
			items, err := tc.call(context.Background(), newClient(t, srv, nil), cred)
			if err != nil {
				t.Fatalf("%s: unexpected error %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.wantReq, got); diff != "" {
				t.Errorf("%s: request (-want +got):\n%s", tc.reason, diff)
			}
			if _, err := uuid.Parse(correlation); err != nil {
				t.Errorf("x-ms-correlation-id %q is not a GUID: %v", correlation, err)
			}
			if tc.wantItems != nil {
				if diff := cmp.Diff(tc.wantItems, items); diff != "" {
					t.Errorf("%s: items (-want +got):\n%s", tc.reason, diff)
				}
			}
			wantTok := []policy.TokenRequestOptions{{Scopes: []string{m365.LicensingScope}, TenantID: testTenant}}
			if diff := cmp.Diff(wantTok, cred.seen); diff != "" {
				t.Errorf("token requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOfferTypeKey(t *testing.T) {
	cases := map[string]struct {
		reason string
		item   licensing.Item
		want   string
	}{
		"offerType field": {reason: "the offerType field wins when present", item: licensing.Item{OfferType: "SaaS", ProductID: "ignored"}, want: "SaaS"},
		"productId only":  {reason: "without offerType the productId is the key", item: licensing.Item{ProductID: "DYNAMICSBC"}, want: "DYNAMICSBC"},
		"neither":         {reason: "nothing to key on", item: licensing.Item{ProductName: "x"}, want: ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, licensing.OfferTypeKey(tc.item)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestSetAnswer: a PUT Microsoft accepted returns the item answered when it
// is one of the product written, and no item (never an error) when the 2xx
// answer is empty, not JSON, without a value or about another product: the
// write was accepted, and only a read can tell whether it applied.
func TestSetAnswer(t *testing.T) {
	cases := map[string]struct {
		reason string
		status int
		body   string
		want   *licensing.Item
	}{
		"the item":        {reason: "the product's item is returned", status: 200, body: `{"productId":"CFQ7TTC0MM8R","policyValue":"Disabled"}`, want: &licensing.Item{ProductID: "CFQ7TTC0MM8R", PolicyValue: "Disabled"}},
		"no id":           {reason: "an item naming no product is taken as the one written", status: 200, body: `{"policyValue":"Disabled"}`, want: &licensing.Item{PolicyValue: "Disabled"}},
		"no content":      {reason: "204 carries no item", status: 204},
		"empty 200":       {reason: "an empty body carries no item", status: 200},
		"not JSON":        {reason: "a body that is not JSON carries no item", status: 200, body: `OK`},
		"no value":        {reason: "an item without a value says nothing", status: 200, body: `{"productId":"CFQ7TTC0MM8R"}`},
		"another product": {reason: "an item of another product is not an answer about this one", status: 200, body: `{"productId":"CFQ7TTC0H9MP","policyValue":"Disabled"}`},
		"accepted, 202":   {reason: "any 2xx is accepted", status: 202, body: `{"productId":"CFQ7TTC0MM8R","policyValue":"Disabled"}`, want: &licensing.Item{ProductID: "CFQ7TTC0MM8R", PolicyValue: "Disabled"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, respond(tc.status, tc.body))
			got, err := newClient(t, srv, nil).For(testTenant, &staticCred{}).SetProduct(context.Background(), "CFQ7TTC0MM8R", licensing.ValueDisabled)
			if err != nil {
				t.Fatalf("%s: an accepted PUT failed: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
