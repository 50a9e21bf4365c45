package m365sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// AdminPath is where the simulator serves its admin API.
const AdminPath = "/_sim"

// maxAdminAnswer caps the size of an admin API answer a client reads.
const maxAdminAnswer = 64 << 20

// AdminClient acts on a running simulator's admin API (see adminMux) the way
// a person acts in the Microsoft 365 admin center; harnesses use it to drive
// m365sim started as its own process.
type AdminClient struct {
	base    string
	http    *http.Client
	timeout time.Duration
}

// AdminError is a non-2xx answer of the admin API.
type AdminError struct {
	Status  int
	Message string
}

func (e *AdminError) Error() string {
	return fmt.Sprintf("simulator answered %d: %s", e.Status, e.Message)
}

// NewAdminClient talks to the admin API at adminURL (ReadyInfo.AdminURL),
// trusting the simulator's CA in caFile; every call has the given timeout.
func NewAdminClient(adminURL, caFile string, timeout time.Duration) (*AdminClient, error) {
	hc, err := m365.NewHTTPClient(caFile)
	if err != nil {
		return nil, err
	}
	return &AdminClient{base: adminURL + AdminPath, http: hc, timeout: timeout}, nil
}

// do sends one admin request with JSON in and out.
func (c *AdminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return &AdminError{Status: resp.StatusCode, Message: e.Error}
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

// SetPolicy sets a product's policy by hand.
func (c *AdminClient) SetPolicy(ctx context.Context, tenantID, productID, value string) error {
	return c.do(ctx, http.MethodPut, tenantPath(tenantID, "products", productID), map[string]string{"policyValue": value}, nil)
}

// Products returns a tenant's products with their policy values.
func (c *AdminClient) Products(ctx context.Context, tenantID string) ([]Product, error) {
	var out []Product
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "products"), nil, &out)
}

// Policy returns one product's policy value.
func (c *AdminClient) Policy(ctx context.Context, tenantID, productID string) (string, error) {
	var out struct {
		PolicyValue string `json:"policyValue"`
	}
	return out.PolicyValue, c.do(ctx, http.MethodGet, tenantPath(tenantID, "products", productID), nil, &out)
}

// AddProduct adds a product the way Microsoft does: it starts as Enabled.
func (c *AdminClient) AddProduct(ctx context.Context, tenantID string, p Product) (Product, error) {
	var out Product
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "products"), p, &out)
}

// Purchase makes a self-service purchase as a user.
func (c *AdminClient) Purchase(ctx context.Context, tenantID string, p PurchaseRequest) (Subscription, error) {
	var out Subscription
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "purchases"), p, &out)
}

// TakeOver moves a self-service subscription's users into the
// organisation's subscription, as an admin taking control does.
func (c *AdminClient) TakeOver(ctx context.Context, tenantID, subscriptionID string) (Subscription, error) {
	var out Subscription
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "subscriptions", subscriptionID, "takeover"), nil, &out)
}

// Advance moves a subscription along its lifecycle to status (e.g. a
// cancelled one through Warning and Suspended to Deleted), skipping the
// weeks Microsoft 365 takes.
func (c *AdminClient) Advance(ctx context.Context, tenantID, subscriptionID, status string) (Subscription, error) {
	var out Subscription
	return out, c.do(ctx, http.MethodPost, tenantPath(tenantID, "subscriptions", subscriptionID, "advance"), map[string]string{"to": status}, &out)
}

// AddTenant adds a tenant to the simulator (a customer that appears).
func (c *AdminClient) AddTenant(ctx context.Context, t TenantConfig) (TenantInfo, error) {
	var out TenantInfo
	return out, c.do(ctx, http.MethodPost, "/tenants", t, &out)
}

// RegisterApp registers an app (client ID and secret) in a tenant.
func (c *AdminClient) RegisterApp(ctx context.Context, tenantID string, app AppRequest) error {
	return c.do(ctx, http.MethodPost, tenantPath(tenantID, "apps"), app, nil)
}

// AddCustomer makes customerID a customer of partnerID (a GDAP relationship).
func (c *AdminClient) AddCustomer(ctx context.Context, partnerID, customerID string) error {
	return c.do(ctx, http.MethodPost, tenantPath(partnerID, "customers"), CustomerRequest{TenantID: customerID}, nil)
}

// Settings returns the tenant's acquisition settings as the admin center
// shows them.
func (c *AdminClient) Settings(ctx context.Context, tenantID string) (TenantSettings, error) {
	var out TenantSettings
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "settings"), nil, &out)
}

// Cancel cancels a subscription as an admin does and lets it run through
// Warning and Suspended to Deleted.
func (c *AdminClient) Cancel(ctx context.Context, tenantID, subscriptionID string) (Subscription, error) {
	return c.Advance(ctx, tenantID, subscriptionID, StatusDeleted)
}

// InjectFault makes the simulator misbehave for a tenant (see Fault).
func (c *AdminClient) InjectFault(ctx context.Context, tenantID string, f Fault) error {
	return c.do(ctx, http.MethodPost, tenantPath(tenantID, "faults"), f, nil)
}

// Requests returns the tenant's request log (calls the controller made).
func (c *AdminClient) Requests(ctx context.Context, tenantID string) (RequestLog, error) {
	var out RequestLog
	return out, c.do(ctx, http.MethodGet, tenantPath(tenantID, "requests"), nil, &out)
}

// FleetRequests returns the request counters summed over every tenant.
func (c *AdminClient) FleetRequests(ctx context.Context) (RequestStats, error) {
	var out RequestStats
	return out, c.do(ctx, http.MethodGet, "/requests", nil, &out)
}

// ResetFleetRequests empties every tenant's request log.
func (c *AdminClient) ResetFleetRequests(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/requests", nil, nil)
}

// Traffic returns the latency and throttling the simulator applies.
func (c *AdminClient) Traffic(ctx context.Context) (Traffic, error) {
	var in struct {
		Latency       string   `json:"latency"`
		LatencyJitter string   `json:"latencyJitter"`
		Throttle      Throttle `json:"throttle"`
	}
	if err := c.do(ctx, http.MethodGet, "/traffic", nil, &in); err != nil {
		return Traffic{}, err
	}
	out := Traffic{Throttle: in.Throttle}
	var err1, err2 error
	out.Latency, err1 = time.ParseDuration(in.Latency)
	out.LatencyJitter, err2 = time.ParseDuration(in.LatencyJitter)
	if err := errors.Join(err1, err2); err != nil {
		return out, fmt.Errorf("GET /_sim/traffic: %w", err)
	}
	return out, nil
}
