package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// simAdminPath is where the simulator serves its admin API.
const simAdminPath = "/_sim"

// simClient acts on the simulator's admin API the way a person acts in the
// Microsoft 365 admin center.
type simClient struct {
	base string
	http *http.Client
}

// simError is a non-2xx answer of the admin API.
type simError struct {
	Status  int
	Message string
}

func (e *simError) Error() string {
	return fmt.Sprintf("simulator answered %d: %s", e.Status, e.Message)
}

func newSimClient(adminURL, caFile string) (*simClient, error) {
	hc, err := m365.NewHTTPClient(caFile)
	if err != nil {
		return nil, err
	}
	hc.Timeout = apiCallTimeout
	return &simClient{base: adminURL + simAdminPath, http: hc}, nil
}

// do sends one admin request with JSON in and out.
func (c *simClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &simError{Status: resp.StatusCode, Message: e.Error}
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

func tenantPath(tenantID string, rest ...string) string {
	p := "/tenants/" + url.PathEscape(tenantID)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// setPolicy sets a product's policy by hand.
func (c *simClient) setPolicy(ctx context.Context, tenantID, productID, value string) error {
	return c.do(ctx, http.MethodPut, tenantPath(tenantID, "products", productID), map[string]string{"policyValue": value}, nil)
}

// products returns a tenant's products with their policy values.
func (c *simClient) products(ctx context.Context, tenantID string) ([]m365sim.Product, error) {
	var out []m365sim.Product
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "products"), nil, &out)
}

// policy returns one product's policy value.
func (c *simClient) policy(ctx context.Context, tenantID, productID string) (string, error) {
	var out struct {
		PolicyValue string `json:"policyValue"`
	}
	return out.PolicyValue, c.do(ctx, http.MethodGet, tenantPath(tenantID, "products", productID), nil, &out)
}

// addProduct adds a product the way Microsoft does: it starts as Enabled.
func (c *simClient) addProduct(ctx context.Context, tenantID string, p m365sim.Product) (m365sim.Product, error) {
	var out m365sim.Product
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "products"), p, &out)
}

// purchase makes a self-service purchase as a user.
func (c *simClient) purchase(ctx context.Context, tenantID string, p m365sim.PurchaseRequest) (m365sim.Subscription, error) {
	var out m365sim.Subscription
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "purchases"), p, &out)
}

// takeOver moves a self-service subscription's users into the
// organisation's subscription, as an admin taking control does, and lets
// the cancellation that follows run through Warning and Suspended to Deleted
// (in Microsoft 365 that takes weeks; the demo skips ahead).
func (c *simClient) takeOver(ctx context.Context, tenantID, subscriptionID string) (m365sim.Subscription, error) {
	var out m365sim.Subscription
	if err := c.do(ctx, http.MethodPost, tenantPath(tenantID, "subscriptions", subscriptionID, "takeover"), nil, &out); err != nil {
		return out, err
	}
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "subscriptions", subscriptionID, "advance"), map[string]string{"to": m365sim.StatusDeleted}, &out)
}

// requests returns the tenant's request log (calls the controller made).
func (c *simClient) requests(ctx context.Context, tenantID string) (m365sim.RequestLog, error) {
	var out m365sim.RequestLog
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "requests"), nil, &out)
}

// injectFault makes the simulator misbehave for the tenant's requests.
func (c *simClient) injectFault(ctx context.Context, tenantID string, f m365sim.Fault) error {
	return c.do(ctx, http.MethodPost, tenantPath(tenantID, "faults"), f, nil)
}

// settings returns the tenant's acquisition settings as the admin center shows them.
func (c *simClient) settings(ctx context.Context, tenantID string) (m365sim.TenantSettings, error) {
	var out m365sim.TenantSettings
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "settings"), nil, &out)
}

// cancel cancels a subscription as an admin does, and lets it run through
// Warning and Suspended to Deleted (the demo skips ahead).
func (c *simClient) cancel(ctx context.Context, tenantID, subscriptionID string) (m365sim.Subscription, error) {
	var out m365sim.Subscription
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "subscriptions", subscriptionID, "advance"), map[string]string{"to": m365sim.StatusDeleted}, &out)
}
