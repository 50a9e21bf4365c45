package auth

// Integration tests: client secret and certificate against the tenant
// simulator. Workload identity and delegated auth read the cluster (a
// ServiceAccount token, a Secret), so their integration tests live with the
// controller's credential sources (controllers/suite_credentials_test.go).

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// simFixture is one simulator with one tenant and a Provider pointed at it.
type simFixture struct {
	sim       *m365sim.Server
	tenant    string
	provider  *Provider
	licensing *licensing.Client
}

func newSim(t *testing.T) *simFixture {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if _, err := sim.AddTenant(m365sim.TenantConfig{ID: testTenant}); err != nil {
		t.Fatal(err)
	}
	ep := sim.Endpoints()
	gate := m365.NewGate(nil)
	p, err := NewProvider(Options{AuthorityHost: ep.AuthorityHost, HTTPClient: sim.HTTPClient(), Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := licensing.New(licensing.Options{Endpoint: ep.Licensing, HTTPClient: sim.HTTPClient(), Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	return &simFixture{sim: sim, tenant: testTenant, provider: p, licensing: lc}
}

// listProducts calls the licensing API with cred, as the reconciler does.
func (s *simFixture) listProducts(t *testing.T, cred azcore.TokenCredential) ([]licensing.Item, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, _, err := s.licensing.For(s.tenant, cred).ListProducts(ctx)
	return items, err
}

func (s *simFixture) register(t *testing.T, app m365sim.App) {
	t.Helper()
	if err := s.sim.RegisterApp(s.tenant, app); err != nil {
		t.Fatalf("RegisterApp: %v", err)
	}
}

var readWrite = []string{m365sim.PermPolicyReadWrite}

func TestSimClientSecret(t *testing.T) {
	s := newSim(t)
	s.register(t, m365sim.App{ClientID: testClient, Secret: testSecret, Permissions: readWrite})

	items, err := s.listProducts(t, mustCredential(t, s.provider, secretMaterial(testSecret)))
	if err != nil || len(items) == 0 {
		t.Fatalf("listing products with a client secret: %d items, %v", len(items), err)
	}

	_, err = mustCredential(t, s.provider, secretMaterial("wrong-"+testSecret)).GetToken(context.Background(), licensingScope)
	v := viewOf(t, err)
	if diff := cmp.Diff([3]any{m365.Unauthorized, 401, "invalid_client"}, [3]any{v.Kind, v.StatusCode, v.Code}); diff != "" {
		t.Errorf("wrong secret (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(v.Reason, "AADSTS7000215: ") || strings.Contains(err.Error(), testSecret) {
		t.Errorf("wrong secret: message %q must name AADSTS7000215 and not show the secret", err)
	}
}

func TestSimMissingPermissionAndWrongAudience(t *testing.T) {
	s := newSim(t)
	s.register(t, m365sim.App{ClientID: testClient, Secret: testSecret}) // consented to nothing
	cred := mustCredential(t, s.provider, secretMaterial(testSecret))
	_, err := s.listProducts(t, cred)
	if diff := cmp.Diff(m365.Forbidden, m365.KindOf(err)); diff != "" {
		t.Errorf("app without permission: kind of %v (-want +got):\n%s", err, diff)
	}

	s.register(t, m365sim.App{ClientID: testClient, Secret: testSecret, Permissions: readWrite})
	_, err = s.listProducts(t, graphTokenFor(cred))
	if diff := cmp.Diff(m365.Unauthorized, m365.KindOf(err)); diff != "" {
		t.Errorf("Graph token at the licensing API: kind of %v (-want +got):\n%s", err, diff)
	}
}

// graphTokenFor hands out Graph tokens whatever scope is asked: a token for
// the wrong audience.
func graphTokenFor(cred azcore.TokenCredential) azcore.TokenCredential { return graphOnly{cred} }

type graphOnly struct{ azcore.TokenCredential }

func (g graphOnly) GetToken(ctx context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return g.TokenCredential.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{m365.GraphScope}})
}

func TestSimClientCertificate(t *testing.T) {
	s := newSim(t)
	c := newTestCert(t, time.Now().Add(30*24*time.Hour))
	s.register(t, m365sim.App{ClientID: testClient, CertificatePEM: certPEM(c.cert), Permissions: readWrite})
	m := Material{TenantID: s.tenant, ClientID: testClient, CertificatePEM: c.pem}
	if items, err := s.listProducts(t, mustCredential(t, s.provider, m)); err != nil || len(items) == 0 {
		t.Fatalf("listing products with a certificate: %d items, %v", len(items), err)
	}
	other := newTestCert(t, time.Now().Add(30*24*time.Hour))
	_, err := mustCredential(t, s.provider, Material{TenantID: s.tenant, ClientID: testClient, CertificatePEM: other.pem}).GetToken(context.Background(), licensingScope)
	if diff := cmp.Diff(m365.Unauthorized, m365.KindOf(err)); diff != "" {
		t.Errorf("unregistered certificate: kind of %v (-want +got):\n%s", err, diff)
	}
}
