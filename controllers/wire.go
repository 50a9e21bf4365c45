package controllers

// Wiring: the real Microsoft 365 clients and the cluster's credential sources
// put into the reconciler. The controller binary, the integration suite and
// the bench build it the same way, with NewReconciler.

import (
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// Config says where Microsoft is and how to reach it.
type Config struct {
	Endpoints m365.Endpoints
	// HTTPClient carries the trust store (system pool plus --ca-file).
	HTTPClient *http.Client
	// CallTimeout bounds one call to Microsoft; ReconcileTimeout one reconcile.
	CallTimeout      time.Duration
	ReconcileTimeout time.Duration
	// Metrics may be nil (no metrics); its Transport instruments every
	// Microsoft client.
	Metrics *Metrics
	// Now is the reconciler's clock (nil: time.Now).
	Now func() time.Time
	// WritesPerTenant bounds the PUTs of one tenant in flight at once (0:
	// DefaultWritesPerTenant).
	WritesPerTenant int
	// LeaseNamespace holds the tenant Leases that record ownership; every
	// shard must use the same one (empty: DefaultLeaseNamespace).
	LeaseNamespace string
	// CacheHoldsEveryPolicy says the manager's cache watches every policy
	// of the cluster (no --watch-label-selector, no --watch-namespaces):
	// ownership elections then read a tenant's policies from the cache's
	// spec.tenantID index instead of listing them from the API server.
	CacheHoldsEveryPolicy bool
}

// NewReconciler builds the reconciler with the real clients. They share one
// not-before gate, so a Retry-After from a host holds every call of that
// tenant to that host, whichever client sends it.
func NewReconciler(mgr ctrl.Manager, c Config) (*TenantPurchasePolicyReconciler, error) {
	if err := c.Endpoints.Validate(); err != nil {
		return nil, err
	}
	gate := m365.NewGate(nil)
	// Every client's base transport is counted and timed for its API, under
	// the gate, which reports the requests it holds back.
	httpFor := func(api m365.API) *http.Client { return c.Metrics.Transport().Client(c.HTTPClient, api) }
	creds, err := auth.NewProvider(auth.Options{AuthorityHost: c.Endpoints.AuthorityHost, HTTPClient: httpFor(m365.APIAuthority), Gate: gate, CallTimeout: c.CallTimeout})
	if err != nil {
		return nil, err
	}
	lic, err := licensing.New(licensing.Options{Endpoint: c.Endpoints.Licensing, HTTPClient: httpFor(m365.APILicensing), Gate: gate, Timeout: c.CallTimeout})
	if err != nil {
		return nil, err
	}
	dir, err := graph.New(graph.Options{Endpoint: c.Endpoints.Graph, HTTPClient: httpFor(m365.APIGraph), Gate: gate, Timeout: c.CallTimeout})
	if err != nil {
		return nil, err
	}
	// Secrets are read and written uncached: the cached client would start a
	// cluster-wide Secret informer.
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, err
	}
	claimants := mgr.GetAPIReader()
	if c.CacheHoldsEveryPolicy {
		claimants = mgr.GetClient()
	}
	return &TenantPurchasePolicyReconciler{
		Client:           mgr.GetClient(),
		APIReader:        mgr.GetAPIReader(),
		Claimants:        claimants,
		LeaseNamespace:   c.LeaseNamespace,
		Recorder:         mgr.GetEventRecorder(reportingController),
		Policies:         licensingAPI{lic},
		Directory:        graphAPI{dir},
		Settings:         graphSettingsAPI{dir},
		Credentials:      creds,
		Assertions:       clustercreds.ServiceAccountTokens(direct),
		RefreshTokens:    clustercreds.SecretRefreshTokens(direct),
		Now:              c.Now,
		ReconcileTimeout: c.ReconcileTimeout,
		Metrics:          c.Metrics,
		WritesPerTenant:  c.WritesPerTenant,
	}, nil
}

// licensingAPI and graphAPI connect the real clients to the interfaces the
// reconciler owns.
type (
	licensingAPI struct{ c *licensing.Client }
	graphAPI     struct{ c *graph.Client }
	// graphSettingsAPI is the Graph client's settings calls (same pipeline).
	graphSettingsAPI struct{ c *graph.Client }
)

func (a licensingAPI) For(tenantID string, cred azcore.TokenCredential) TenantPolicies {
	return a.c.For(tenantID, cred)
}

func (a graphAPI) For(tenantID string, cred azcore.TokenCredential) TenantDirectory {
	return a.c.For(tenantID, cred)
}

func (a graphSettingsAPI) For(tenantID string, cred azcore.TokenCredential) TenantSettingsAPI {
	return a.c.For(tenantID, cred)
}
