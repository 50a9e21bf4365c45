// Package auth turns the credential material of a TenantPurchasePolicy into
// an azcore.TokenCredential for one Entra tenant. Four methods are supported:
// a client secret, a client certificate, workload identity federation (a
// Kubernetes service-account token exchanged for an Entra token) and a
// delegated refresh token that is rotated and written back to its Secret.
//
// Credentials are cached per Provider, keyed by tenant, client, method and a
// SHA-256 of the material, so an unchanged Secret reuses its tokens across
// reconciles while a rotated one yields a new credential at once. Every error
// a credential's GetToken returns is a typed *m365.Error (Op "get token") and
// never carries a secret, an assertion or a refresh token.
//
// It decides which Entra answers mean a refused credential and how a rotated
// refresh token is stored. It must not import Kubernetes client code (the
// stores are interfaces the controller implements), retry a refused
// credential, or let any secret reach an error, a log or a redirect.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Well-known values of Azure workload identity.
const (
	// AudienceTokenExchange is the audience Entra requires on a federated
	// (Kubernetes service-account) assertion.
	AudienceTokenExchange = "api://AzureADTokenExchange"
	// WorkloadIdentityClientIDAnnotation on a ServiceAccount names the Entra
	// application it may act as; the reconciler requires it to equal the
	// policy's clientID (the ServiceAccount owner's opt-in).
	WorkloadIdentityClientIDAnnotation = "azure.workload.identity/client-id"
)

// DefaultCacheSize bounds the number of credentials a Provider keeps. When it
// is reached the least recently used credential (and its cached tokens) is
// dropped; the next Credential call for it simply builds a new one.
const DefaultCacheSize = 10000

// opGetToken is the Op of every *m365.Error a credential returns.
const opGetToken = "get token"

// Method names one way of authenticating an application.
type Method string

// The four authentication methods of a TenantPurchasePolicy.
const (
	MethodClientSecret     Method = "clientSecret"
	MethodCertificate      Method = "clientCertificate"
	MethodWorkloadIdentity Method = "workloadIdentity"
	MethodRefreshToken     Method = "refreshToken"
)

// Options configure a Provider.
type Options struct {
	// AuthorityHost is the Entra origin, e.g. https://login.microsoftonline.com.
	// Empty means Microsoft's public cloud.
	AuthorityHost string
	// HTTPClient carries the trust store (the simulator's CA in tests). Nil
	// means a client trusting the system pool.
	HTTPClient *http.Client
	// Gate, when set, keeps token requests for a tenant away from the
	// authority after Entra answered 429 with Retry-After.
	Gate *m365.Gate
	// Now is the clock (nil: time.Now). It dates Retry-After and the expiry of
	// delegated access tokens.
	Now func() time.Time
	// CacheSize bounds the credential cache (0: DefaultCacheSize).
	CacheSize int
	// CallTimeout bounds one token acquisition (0: m365.DefaultCallTimeout).
	CallTimeout time.Duration
}

// Provider builds and caches token credentials. It is safe for concurrent use.
type Provider struct {
	authority string   // origin without trailing slash
	origin    *url.URL // authority, parsed: the only origin requests go to
	http      *http.Client
	gate      *m365.Gate
	now       func() time.Time
	timeout   time.Duration
	cache     *lru
	// stores holds, per refresh-token store key, what every credential of
	// that store shares (*storeState: the redemption lock and an unsaved
	// rotation); one per delegated Secret, so it stays small.
	stores sync.Map
}

// NewProvider checks o and returns a Provider with an empty cache.
func NewProvider(o Options) (*Provider, error) {
	authority := o.AuthorityHost
	if authority == "" {
		authority = m365.PublicAuthorityHost
	}
	if err := m365.ValidateOrigin(authority); err != nil {
		return nil, fmt.Errorf("authority host: %w", err)
	}
	origin, _ := url.Parse(authority) // validated above
	p := &Provider{
		authority: strings.TrimSuffix(authority, "/"),
		origin:    origin,
		http:      o.HTTPClient,
		gate:      o.Gate,
		now:       o.Now,
		timeout:   o.CallTimeout,
		cache:     newLRU(o.CacheSize),
	}
	if p.http == nil {
		c, err := m365.NewHTTPClient("")
		if err != nil {
			return nil, err
		}
		p.http = c
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.timeout <= 0 {
		p.timeout = m365.DefaultCallTimeout
	}
	if p.cache.max <= 0 {
		p.cache.max = DefaultCacheSize
	}
	return p, nil
}

// Material is what the reconciler read from the cluster for one policy.
// Exactly one method is set.
type Material struct {
	TenantID, ClientID string
	// ClientSecret is method 1.
	ClientSecret string
	// CertificatePEM is method 2: PEM holding the certificate (chain) and its
	// unencrypted RSA private key (tls.crt and tls.key concatenated).
	CertificatePEM []byte
	// Assertion is method 3, workload identity: it returns a Kubernetes
	// service-account token with audience AudienceTokenExchange.
	Assertion func(ctx context.Context) (string, error)
	// AssertionKey identifies the assertion source for the cache key, e.g.
	// "namespace/serviceaccount". Required with Assertion.
	AssertionKey string
	// RefreshTokens is method 4, delegated: where the refresh token lives.
	RefreshTokens RefreshTokenStore
}

// RefreshTokenStore loads and saves the delegated refresh token (a Secret key
// in the cluster).
type RefreshTokenStore interface {
	// Load returns the token and its version (resourceVersion) for
	// optimistic locking.
	Load(ctx context.Context) (token string, version string, err error)
	// Save stores token if the stored version is still version; otherwise it
	// fails with an error for which errors.Is(err, ErrConflict) holds.
	Save(ctx context.Context, token string, version string) error
	// Key identifies the store for the cache key, e.g. "ns/secret/key".
	Key() string
}

// ErrConflict is returned (wrapped) by RefreshTokenStore.Save when the stored
// version is no longer the one the token was loaded with.
var ErrConflict = errors.New("refresh token was changed concurrently")

// InvalidCredentialError says the credential material cannot work as given:
// a user error the reconciler reports as Stalled.
type InvalidCredentialError struct{ Reason string }

func (e *InvalidCredentialError) Error() string { return "invalid credentials: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidCredentialError{Reason: fmt.Sprintf(format, args...)}
}

// cacheKey identifies one credential. digest is a SHA-256 of the method's
// material (the secret, the PEM, the assertion key or the store key), so the
// key never holds a secret.
type cacheKey struct {
	tenant, client string
	method         Method
	digest         string
}

// Credential returns the token credential for m, reusing the cached one when
// the same material was seen before. Invalid material yields an
// *InvalidCredentialError.
func (p *Provider) Credential(m Material) (azcore.TokenCredential, error) {
	key, err := keyOf(m)
	if err != nil {
		return nil, err
	}
	if c, ok := p.cache.get(key); ok {
		return c, nil
	}
	c, err := p.build(m, key.method)
	if err != nil {
		return nil, err
	}
	return p.cache.add(key, c), nil
}

// keyOf validates the shape of m and returns its cache key.
func keyOf(m Material) (cacheKey, error) {
	if strings.TrimSpace(m.TenantID) == "" {
		return cacheKey{}, invalid("tenant ID is empty")
	}
	if !validTenantID(m.TenantID) {
		return cacheKey{}, invalid("tenant ID %q may hold only letters, digits, '-' and '.'", m.TenantID)
	}
	if strings.TrimSpace(m.ClientID) == "" {
		return cacheKey{}, invalid("client ID is empty")
	}
	var set []Method
	var material string
	if m.ClientSecret != "" {
		set, material = append(set, MethodClientSecret), m.ClientSecret
	}
	if len(m.CertificatePEM) > 0 {
		set, material = append(set, MethodCertificate), string(m.CertificatePEM)
	}
	if m.Assertion != nil {
		if m.AssertionKey == "" {
			return cacheKey{}, invalid("workload identity: assertion key is empty")
		}
		set, material = append(set, MethodWorkloadIdentity), m.AssertionKey
	}
	if m.RefreshTokens != nil {
		set, material = append(set, MethodRefreshToken), m.RefreshTokens.Key()
	}
	switch len(set) {
	case 0:
		return cacheKey{}, invalid("no authentication method set (want one of client secret, certificate, workload identity, refresh token)")
	case 1:
	default:
		names := make([]string, len(set))
		for i, s := range set {
			names[i] = string(s)
		}
		return cacheKey{}, invalid("more than one authentication method set: %s", strings.Join(names, ", "))
	}
	return cacheKey{tenant: m.TenantID, client: m.ClientID, method: set[0], digest: digest(set[0], material)}, nil
}

// validTenantID accepts what Entra accepts as a tenant in an authority URL: a
// GUID or a domain name.
func validTenantID(t string) bool {
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func digest(method Method, material string) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(material))
	return hex.EncodeToString(h.Sum(nil))
}

// build creates the credential for m.
func (p *Provider) build(m Material, method Method) (azcore.TokenCredential, error) {
	if method == MethodRefreshToken {
		return p.newRefreshCredential(m), nil
	}
	return p.newAzidentityCredential(m, method)
}

// httpClientFor returns the client of tenant's token requests: the shared
// pipeline (m365.TenantClient: the gate when the Provider has one, no
// redirects, capped bodies), reporting transport errors to the calling
// GetToken. azidentity and MSAL send every request (metadata and token)
// through it, so no secret, assertion or refresh token follows a redirect,
// and none goes to another origin than the authority (authorityOnly).
func (p *Provider) httpClientFor(tenant string) *http.Client {
	c := m365.TenantClient(p.http, tenant, p.gate)
	c.Transport = &recordingTransport{base: &authorityOnly{origin: p.origin, base: c.Transport}}
	return c
}

// authorityOnly sends a request only to origin, the configured authority.
// MSAL posts the client secret or assertion to whatever token_endpoint the
// tenant's OIDC metadata names, checking its issuer but not that endpoint's
// host; so a request to any other origin (even one the CA trusts) is refused
// before it leaves, with an InvalidResponse *m365.Error that names the
// scheme and host only, never the path or query.
type authorityOnly struct {
	origin *url.URL
	base   http.RoundTripper
}

func (t *authorityOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !m365.SameOrigin(t.origin, req.URL) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &m365.Error{Kind: m365.InvalidResponse, Reason: m365.CleanText(
			fmt.Sprintf("Entra's metadata names a token endpoint on another host: %s://%s; not sent",
				strings.ToLower(req.URL.Scheme), req.URL.Host), m365.MaxReasonLength)}
	}
	return t.base.RoundTrip(req)
}

// tokenURL is the v2 token endpoint of tenant.
func (p *Provider) tokenURL(tenant string) string {
	return p.authority + "/" + tenant + "/oauth2/v2.0/token"
}
