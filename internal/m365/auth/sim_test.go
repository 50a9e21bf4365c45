package auth

// Integration tests: the four methods against the tenant simulator, with a
// real kube-apiserver (envtest) for workload identity (TokenRequest) and the
// delegated refresh-token Secret. They need the envtest binaries: set
// KUBEBUILDER_ASSETS=$(bash hack/envtest-bins.sh), or have them built under
// bin/envtest; otherwise they are skipped.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// cluster is the envtest control plane shared by the integration tests.
var cluster struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	c    client.Client
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.env != nil {
		_ = cluster.env.Stop()
	}
	os.Exit(code)
}

// envtestAssets returns KUBEBUILDER_ASSETS, or the binaries cached by
// hack/envtest-bins.sh under bin/envtest.
func envtestAssets() string {
	if v := os.Getenv("KUBEBUILDER_ASSETS"); v != "" {
		return v
	}
	_, file, _, _ := runtime.Caller(0)
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "..", "..", "..", "bin", "envtest", "*", "kube-apiserver"))
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// kube starts (once) and returns the envtest API server's client and config.
func kube(t *testing.T) (client.Client, *rest.Config) {
	t.Helper()
	assets := envtestAssets()
	if assets == "" {
		t.Fatal("envtest binaries not found: run KUBEBUILDER_ASSETS=$(bash hack/envtest-bins.sh) go test ./internal/m365/auth/")
	}
	cluster.once.Do(func() {
		cluster.env = &envtest.Environment{BinaryAssetsDirectory: assets}
		cluster.cfg, cluster.err = cluster.env.Start()
		if cluster.err == nil {
			cluster.c, cluster.err = client.New(cluster.cfg, client.Options{})
		}
	})
	if cluster.err != nil {
		t.Fatalf("starting envtest: %v", cluster.err)
	}
	return cluster.c, cluster.cfg
}

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
	return s.licensing.ListProducts(ctx, s.tenant, cred)
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

func TestSimWorkloadIdentity(t *testing.T) {
	c, cfg := kube(t)
	s := newSim(t)
	ns, sa := newNamespace(t, c), "m365-contoso"
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa,
		Annotations: map[string]string{WorkloadIdentityClientIDAnnotation: testClient}}}); err != nil {
		t.Fatal(err)
	}
	issuer, jwks := serviceAccountIssuer(t, cfg)
	s.register(t, m365sim.App{ClientID: testClient, Permissions: readWrite, Federated: &m365sim.FederatedCredential{
		Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: AudienceTokenExchange, JWKS: jwks}})

	m := Material{TenantID: s.tenant, ClientID: testClient, Assertion: ServiceAccountAssertion(c, ns, sa), AssertionKey: ns + "/" + sa}
	if items, err := s.listProducts(t, mustCredential(t, s.provider, m)); err != nil || len(items) == 0 {
		t.Fatalf("listing products with workload identity: %d items, %v", len(items), err)
	}

	t.Run("wrong audience", func(t *testing.T) {
		m := Material{TenantID: s.tenant, ClientID: testClient, AssertionKey: ns + "/" + sa + "/other-audience",
			Assertion: func(ctx context.Context) (string, error) {
				return tokenWithAudience(ctx, c, ns, sa, "api://something-else")
			}}
		_, err := mustCredential(t, s.provider, m).GetToken(ctx, licensingScope)
		v := viewOf(t, err)
		if diff := cmp.Diff(m365.Unauthorized, v.Kind); diff != "" || !strings.HasPrefix(v.Reason, "AADSTS700212: ") {
			t.Errorf("assertion for another audience: %v (-want +got kind):\n%s", err, diff)
		}
	})
	t.Run("missing service account", func(t *testing.T) {
		m := Material{TenantID: s.tenant, ClientID: testClient, Assertion: ServiceAccountAssertion(c, ns, "nobody"), AssertionKey: ns + "/nobody"}
		_, err := mustCredential(t, s.provider, m).GetToken(ctx, licensingScope)
		if diff := cmp.Diff(errorView{Kind: m365.Unauthorized, Op: "get token", Code: "credential_unavailable", Reason: "service account token"}, viewOf(t, err)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "auth-"}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// serviceAccountIssuer reads the API server's service-account issuer and its
// JWKS, as a cloud identity provider would from the OIDC discovery documents.
func serviceAccountIssuer(t *testing.T, cfg *rest.Config) (string, []byte) {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) []byte {
		resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	var disco struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(get("/.well-known/openid-configuration"), &disco); err != nil || disco.Issuer == "" {
		t.Fatalf("API server discovery: %q %v", disco.Issuer, err)
	}
	return disco.Issuer, get("/openid/v1/jwks")
}

// tokenWithAudience requests a service-account token for audience.
func tokenWithAudience(ctx context.Context, c client.Client, ns, sa, audience string) (string, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
	if err := c.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}, tr); err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func TestSimDelegatedWritesRotatedTokenBack(t *testing.T) {
	c, _ := kube(t)
	s := newSim(t)
	ctx := context.Background()
	s.register(t, m365sim.App{ClientID: testClient})
	rt, err := s.sim.RegisterDelegatedUser(s.tenant, testClient, []string{m365sim.RoleBillingAdmin})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, c)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contoso-delegated"},
		Data: map[string][]byte{"refreshToken": []byte(rt), "note": []byte("kept")}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	store := SecretRefreshTokenStore(c, ns, "contoso-delegated", "refreshToken")
	m := Material{TenantID: s.tenant, ClientID: testClient, RefreshTokens: store}

	if items, err := s.listProducts(t, mustCredential(t, s.provider, m)); err != nil || len(items) == 0 {
		t.Fatalf("listing products as a delegated Billing Administrator: %d items, %v", len(items), err)
	}
	var stored corev1.Secret
	if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &stored); err != nil {
		t.Fatal(err)
	}
	rotated := string(stored.Data["refreshToken"])
	if rotated == "" || rotated == rt || string(stored.Data["note"]) != "kept" {
		t.Fatalf("Secret after redemption: refresh token rotated=%t, other keys kept=%t", rotated != rt && rotated != "", string(stored.Data["note"]) == "kept")
	}

	// Another replica (a fresh Provider) starts from the Secret: the token
	// written back is the one the simulator honours now.
	other, err := NewProvider(Options{AuthorityHost: s.sim.Endpoints().AuthorityHost, HTTPClient: s.sim.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustCredential(t, other, m).GetToken(ctx, licensingScope); err != nil {
		t.Fatalf("redeeming the written-back refresh token: %v", err)
	}

	// The Secret store refuses a stale version.
	_, version, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &stored); err != nil {
		t.Fatal(err)
	}
	stored.Data["note"] = []byte("changed")
	if err := c.Update(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if err := store.Save(ctx, "x", version); !errors.Is(err, ErrConflict) {
		t.Errorf("Save with a stale version: %v, want ErrConflict", err)
	}
}

func TestSimDelegatedWithoutRole(t *testing.T) {
	c, _ := kube(t)
	s := newSim(t)
	s.register(t, m365sim.App{ClientID: testClient})
	rt, err := s.sim.RegisterDelegatedUser(s.tenant, testClient, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, c)
	if err := c.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "d"}, Data: map[string][]byte{"rt": []byte(rt)}}); err != nil {
		t.Fatal(err)
	}
	m := Material{TenantID: s.tenant, ClientID: testClient, RefreshTokens: SecretRefreshTokenStore(c, ns, "d", "rt")}
	_, err = s.listProducts(t, mustCredential(t, s.provider, m))
	if diff := cmp.Diff(m365.Forbidden, m365.KindOf(err)); diff != "" {
		t.Errorf("user without an admin role: kind of %v (-want +got):\n%s", err, diff)
	}
}
