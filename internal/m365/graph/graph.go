// Package graph reads from Microsoft Graph what the controller tracks about a
// tenant's licences: the company subscriptions, the subscribed SKUs and, one at
// a time, a user's licence assignments.
//
// It is the only package of the project that imports msgraph-sdk-go; its API
// uses plain Go types. Every call fails with an *m365.Error: throttling,
// refusals and outages keep their kind, so the reconciler can act on them.
//
// Each call builds its own request pipeline (cheap: see BenchmarkSession):
// kiota's default middlewares minus its retry handler, over the tenant's
// not-before gate, over the shared base transport that owns the connection
// pool. Nothing is cached per tenant or credential, so a rotated credential
// takes effect at the next call and no cache needs bounding.
//
// It must not import Kubernetes code, retry on its own (the SDK's retry and
// redirect handlers are removed), follow a nextLink off the Graph origin, or
// decide what an empty or short answer means: the reconciler does.
package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/microsoftgraph/msgraph-sdk-go/directory"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/subscribedskus"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	dir "github.com/tenantpolicy/purchase-policy-controller/internal/m365/directory"
)

// Names of the calls, used as m365.Error.Op.
const (
	OpListSubscriptions  = "list subscriptions"
	OpListSubscribedSkus = "list subscribed SKUs"
	OpGetUser            = "get user"
)

// apiVersionPath is appended to the endpoint origin.
const apiVersionPath = "/v1.0"

// maxPages bounds a paged listing, so a service that keeps answering with a
// nextLink cannot keep a reconcile busy until its deadline, nor fill memory
// (each page is capped at m365.MaxResponseBytes).
const maxPages = 100

// subscribedSkuFields is the $select of GET /subscribedSkus: exactly what
// SubscribedSku holds.
var subscribedSkuFields = []string{
	"skuId", "skuPartNumber", "prepaidUnits", "consumedUnits", "subscriptionIds",
	"accountId", "accountName", "appliesTo", "capabilityStatus",
}

// userFields is the $select of GET /users/{id}.
var userFields = []string{"id", "userPrincipalName", "assignedLicenses", "licenseAssignmentStates"}

// Options configure a Client.
type Options struct {
	// Endpoint is the Graph origin (https://host[:port]); the client appends
	// /v1.0. Empty means m365.PublicGraph.
	Endpoint string
	// HTTPClient's Transport is the base transport (trust store, connection
	// pool). Nil means http.DefaultTransport.
	HTTPClient *http.Client
	// Gate keeps requests away from a host that answered Retry-After. It
	// replaces the SDK's retry middleware. Nil means a gate of this client alone.
	Gate *m365.Gate
	// Timeout bounds one call, a whole paged listing included. Zero means
	// m365.DefaultCallTimeout.
	Timeout time.Duration
	// Now is the clock used to read Retry-After dates. Nil means time.Now.
	Now func() time.Time
}

// Client reads Microsoft Graph for many tenants. It is safe for concurrent use.
type Client struct {
	baseURL string // origin + /v1.0
	host    string // host name without port: the only host tokens are sent to
	origin  string // host[:port], the gate's key for this endpoint
	base    http.RoundTripper
	gate    *m365.Gate
	timeout time.Duration
	now     func() time.Time
}

// New checks the options and returns a Client. It makes no request.
func New(o Options) (*Client, error) {
	endpoint := strings.TrimSuffix(o.Endpoint, "/")
	if endpoint == "" {
		endpoint = m365.PublicGraph
	}
	if err := m365.ValidateOrigin(endpoint); err != nil {
		return nil, fmt.Errorf("graph endpoint: %w", err)
	}
	u, _ := url.Parse(endpoint) // validated above
	c := &Client{
		baseURL: endpoint + apiVersionPath,
		host:    u.Hostname(),
		origin:  u.Host,
		base:    http.DefaultTransport,
	}
	c.now, c.gate, c.timeout = m365.CallDefaults(o.Now, o.Gate, o.Timeout)
	if o.HTTPClient != nil && o.HTTPClient.Transport != nil {
		c.base = o.HTTPClient.Transport
	}
	registerSerializers()
	return c, nil
}

// The directory values the reads return, defined in package directory so
// that code deciding about them (internal/tracking) needs no Graph SDK.
type (
	Subscription  = dir.Subscription
	SubscribedSku = dir.SubscribedSku
	LicenseState  = dir.LicenseState
	User          = dir.User
)

// Tenant is the Graph API of one tenant, called with one credential: the
// handle a reconcile (or a command-line tool) uses for one run. Get it from
// Client.For; it is a small value and costs nothing to make.
type Tenant struct {
	c        *Client
	tenantID string
	cred     azcore.TokenCredential
}

// For returns the Graph API of tenantID, every call authenticated with cred.
func (c *Client) For(tenantID string, cred azcore.TokenCredential) Tenant {
	return Tenant{c: c, tenantID: tenantID, cred: cred}
}

// ListSubscriptions returns every company subscription of the tenant,
// following @odata.nextLink through all pages (on the endpoint's origin
// only), one per subscription ID in the order of the answer. info counts what
// the answer held beyond them: null items, items without a usable ID,
// duplicates, fields cut to the CRD's bounds.
func (t Tenant) ListSubscriptions(ctx context.Context) ([]Subscription, m365.ListInfo, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListSubscriptions, tenantID, err, nil)
	}
	rb := directory.NewSubscriptionsRequestBuilderInternal(s.pathParams(), s.adapter)
	items, info, err := collect(ctx, c.followable,
		func(ctx context.Context) (models.CompanySubscriptionCollectionResponseable, error) {
			return rb.Get(ctx, nil)
		},
		func(ctx context.Context, next string) (models.CompanySubscriptionCollectionResponseable, error) {
			return rb.WithUrl(next).Get(ctx, nil)
		})
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListSubscriptions, tenantID, err, s.rec)
	}
	out := make([]Subscription, 0, len(items))
	seen := m365.Keys{}
	for _, it := range items {
		sub := toSubscription(it)
		if !seen.Keep(&info, sub.ID) {
			continue
		}
		if boundSubscription(&sub) {
			info.Truncated++
		}
		out = append(out, sub)
	}
	return out, info, nil
}

// ListSubscribedSkus returns every subscribed SKU of the tenant, following
// @odata.nextLink through all pages (on the endpoint's origin only), one per
// SKU and billing account. It asks only for the fields it returns. info
// counts what the answer held beyond them, like ListSubscriptions.
func (t Tenant) ListSubscribedSkus(ctx context.Context) ([]SubscribedSku, m365.ListInfo, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListSubscribedSkus, tenantID, err, nil)
	}
	rb := subscribedskus.NewSubscribedSkusRequestBuilderInternal(s.pathParams(), s.adapter)
	cfg := &subscribedskus.SubscribedSkusRequestBuilderGetRequestConfiguration{
		QueryParameters: &subscribedskus.SubscribedSkusRequestBuilderGetQueryParameters{Select: subscribedSkuFields},
	}
	items, info, err := collect(ctx, c.followable,
		func(ctx context.Context) (models.SubscribedSkuCollectionResponseable, error) {
			return rb.Get(ctx, cfg)
		},
		func(ctx context.Context, next string) (models.SubscribedSkuCollectionResponseable, error) {
			return rb.WithUrl(next).Get(ctx, nil)
		})
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListSubscribedSkus, tenantID, err, s.rec)
	}
	out := make([]SubscribedSku, 0, len(items))
	seen := m365.Keys{}
	for _, it := range items {
		sku := toSubscribedSku(it)
		if !seen.Keep(&info, sku.SkuID, sku.AccountID) {
			continue
		}
		if boundSubscribedSku(&sku) {
			info.Truncated++
		}
		out = append(out, sku)
	}
	return out, info, nil
}

// GetUser reads one user's licence assignments. An unknown user fails with an
// *m365.Error of Kind NotFound.
func (t Tenant) GetUser(ctx context.Context, userID string) (User, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if strings.TrimSpace(userID) == "" {
		return User{}, &m365.Error{Op: OpGetUser, Kind: m365.BadRequest, Reason: "empty user ID"}
	}
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return User{}, c.classify(ctx, OpGetUser, tenantID, err, nil)
	}
	rb := users.NewUsersRequestBuilderInternal(s.pathParams(), s.adapter).ByUserId(userID)
	u, err := rb.Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userFields},
	})
	if err == nil && u == nil {
		err = errEmptyResponse
	}
	if err != nil {
		return User{}, c.classify(ctx, OpGetUser, tenantID, err, s.rec)
	}
	return toUser(u), nil
}

// errEmptyResponse is returned when Graph answered 2xx without a body.
var errEmptyResponse = errors.New("empty response")

// Reasons of the paging errors (Kind InvalidResponse).
const (
	reasonForeignNextLink = "@odata.nextLink leaves the Graph endpoint's origin; not followed"
	reasonRepeatedLink    = "@odata.nextLink repeats an earlier page"
	reasonTooManyPages    = "paging did not end within %d pages"
	reasonNoValue         = "a page without its value list"
)

// pagingError is a listing whose paging cannot be trusted.
func pagingError(reason string) *m365.Error {
	return &m365.Error{Kind: m365.InvalidResponse, Reason: reason}
}

// followable checks that a nextLink stays on the Graph endpoint: an absolute
// https URL on the endpoint's host and port, without user info. Any other
// link is refused before a request (and the token) leaves.
func (c *Client) followable(link string) error {
	u, err := url.Parse(link)
	if err != nil || !m365.SameOrigin(&url.URL{Scheme: "https", Host: c.origin}, u) {
		return pagingError(reasonForeignNextLink)
	}
	return nil
}

// page is what every Graph collection response offers.
type page[T any] interface {
	GetValue() []T
	GetOdataNextLink() *string
}

// collect gets the first page with first, then each @odata.nextLink that
// follow accepts with next, and returns all items in order, without the null
// ones (counted in info.Invalid). A repeated link or more than maxPages pages
// is an InvalidResponse error.
func collect[T any, P page[T]](ctx context.Context, follow func(string) error, first func(context.Context) (P, error), next func(context.Context, string) (P, error)) ([]T, m365.ListInfo, error) {
	var (
		all  []T
		info m365.ListInfo
	)
	seen := map[string]bool{}
	p, err := first(ctx)
	for n := 1; ; n++ {
		if err != nil {
			return nil, info, err
		}
		if any(p) == nil {
			return nil, info, errEmptyResponse
		}
		if p.GetValue() == nil { // "value" missing or null; [] is an empty page
			return nil, info, pagingError(reasonNoValue)
		}
		for _, it := range p.GetValue() {
			if any(it) == nil {
				info.Invalid++
				continue
			}
			all = append(all, it)
		}
		link := p.GetOdataNextLink()
		if link == nil || *link == "" {
			return all, info, nil
		}
		switch {
		case seen[*link]:
			return nil, info, pagingError(reasonRepeatedLink)
		case n >= maxPages:
			return nil, info, pagingError(fmt.Sprintf(reasonTooManyPages, maxPages))
		}
		if err := follow(*link); err != nil {
			return nil, info, err
		}
		seen[*link] = true
		p, err = next(ctx, *link)
	}
}
