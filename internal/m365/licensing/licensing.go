// Package licensing calls Microsoft's self-service purchase policy API (the
// "MSCommerce" API on licensing.m365.microsoft.com) with net/http: it lists the
// per-product and per-offer-type policy values of a tenant and sets one value
// at a time.
//
// Every call gets a token for m365.LicensingScope from the caller's
// credential, sends a new x-ms-correlation-id, runs under its own timeout and
// passes the shared pipeline (m365.TenantClient): the tenant's not-before
// gate, so no request leaves before an earlier Retry-After has passed; no
// redirect is followed; no answer is read beyond m365.MaxResponseBytes.
// Lists are deduplicated and bounded (decode.go). Failures are *m365.Error values whose Kind tells the
// reconciler what to do and whose CorrelationID identifies the request for a
// Microsoft support case.
//
// It decides how the API's answers are decoded (OfferTypeKey holds the one
// inference about their shape). It must not import Kubernetes code, retry on
// its own, follow a redirect, or decide what a failure means for a policy:
// the reconciler does.
package licensing

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Policy values the API accepts and returns.
const (
	// ValueEnabled allows purchases and trials.
	ValueEnabled = "Enabled"
	// ValueDisabled blocks purchases and trials.
	ValueDisabled = "Disabled"
	// ValueOnlyTrialsWithoutPaymentMethod allows only trials that need no card.
	ValueOnlyTrialsWithoutPaymentMethod = "OnlyTrialsWithoutPaymentMethod"
)

// Paths and query values of the API, relative to the endpoint origin.
const (
	policyPath      = "/v1.0/policies/AllowSelfServicePurchase"
	productsPath    = policyPath + "/products"
	offerTypesPath  = policyPath + "/offerTypes"
	scopeParam      = "scope"
	scopeProduct    = "product"
	scopeOfferType  = "OfferType"
	correlationHdr  = "x-ms-correlation-id"
	contentTypeJSON = "application/json"
)

// Names of the calls, used as m365.Error.Op.
const (
	opListProducts   = "list products"
	opListOfferTypes = "list offer types"
	opSetProduct     = "set product"
	opSetOfferType   = "set offer type"
)

// maxErrorBytes bounds how much of an error answer is read: only its code and
// message are used. Success bodies are capped by the shared pipeline
// (m365.MaxResponseBytes).
const maxErrorBytes = 64 << 10

// Item is one product (or offer type) policy as the API returns it.
type Item struct {
	PolicyID    string `json:"policyId"`
	PolicyValue string `json:"policyValue"`
	ProductName string `json:"productName"`
	ProductID   string `json:"productId"`
	OfferType   string `json:"offerType,omitempty"`
}

// Options configure a Client. Only Endpoint is required.
type Options struct {
	// Endpoint is the API origin, e.g. https://licensing.m365.microsoft.com;
	// the client appends /v1.0/....
	Endpoint string
	// HTTPClient carries the trust store etc.; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Gate holds the not-before time per (tenant, host); nil means a private one.
	// Share one gate between every client that talks to the same host.
	Gate *m365.Gate
	// Timeout bounds one call (token, request and response body); zero means
	// m365.DefaultCallTimeout.
	Timeout time.Duration
	// CorrelationID returns the x-ms-correlation-id of a call; nil means uuid.NewString.
	CorrelationID func() string
	// Now is the clock used to read Retry-After dates; nil means time.Now.
	Now func() time.Time
}

// Client calls the self-service purchase policy API. It is safe for
// concurrent use by many reconciles and many tenants.
type Client struct {
	origin        string
	httpClient    *http.Client
	gate          *m365.Gate
	timeout       time.Duration
	correlationID func() string
	now           func() time.Time
}

// New returns a Client for o.Endpoint, which must be an https origin
// (m365.ValidateOrigin). Unset options take their documented defaults.
func New(o Options) (*Client, error) {
	if err := m365.ValidateOrigin(o.Endpoint); err != nil {
		return nil, fmt.Errorf("licensing endpoint: %w", err)
	}
	c := &Client{
		origin:        strings.TrimSuffix(o.Endpoint, "/"),
		httpClient:    o.HTTPClient,
		correlationID: o.CorrelationID,
	}
	c.now, c.gate, c.timeout = m365.CallDefaults(o.Now, o.Gate, o.Timeout)
	if c.httpClient == nil {
		c.httpClient = http.DefaultClient
	}
	if c.correlationID == nil {
		c.correlationID = uuid.NewString
	}
	return c, nil
}
