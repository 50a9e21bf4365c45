package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testClient = "11111111-2222-3333-4444-555555555555"
	testSecret = "s3cr3t-value-never-shown"
	testScope  = "aeb86249-8ea3-49e2-900b-54cc8e308f85/.default"
)

// fakeEntra is a TLS Entra double: OIDC metadata per tenant and a token
// endpoint whose answers the test chooses through respond.
type fakeEntra struct {
	t   *testing.T
	srv *httptest.Server

	tokenRequests atomic.Int32
	mu            sync.Mutex
	respond       func(w http.ResponseWriter, form url.Values)
	// release, when set, holds every token answer until it is closed.
	release chan struct{}
	// arrived receives one value per token request (buffered), so tests can
	// wait until a request is in flight.
	arrived chan struct{}
	// tokenEndpoint, when set, is the token_endpoint the metadata names
	// instead of the fake's own.
	tokenEndpoint string
}

func newFakeEntra(t *testing.T) *fakeEntra {
	t.Helper()
	f := &fakeEntra{t: t, arrived: make(chan struct{}, 100)}
	f.respond = f.acceptSecret(testSecret)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", f.metadata)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEntra) metadata(w http.ResponseWriter, r *http.Request) {
	base := f.srv.URL + "/" + r.PathValue("tenant")
	f.mu.Lock()
	tokenEndpoint := f.tokenEndpoint
	f.mu.Unlock()
	if tokenEndpoint == "" {
		tokenEndpoint = base + "/oauth2/v2.0/token"
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"issuer":                 base + "/v2.0",
		"token_endpoint":         tokenEndpoint,
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"jwks_uri":               base + "/discovery/v2.0/keys",
	})
}

func (f *fakeEntra) token(w http.ResponseWriter, r *http.Request) {
	f.tokenRequests.Add(1)
	f.arrived <- struct{}{}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	respond, release := f.respond, f.release
	f.mu.Unlock()
	if release != nil {
		<-release
	}
	if r.PathValue("tenant") != testTenant {
		entraError(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant not found.")
		return
	}
	respond(w, r.PostForm)
}

// setTokenEndpoint makes the metadata name endpoint as the token endpoint.
func (f *fakeEntra) setTokenEndpoint(endpoint string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenEndpoint = endpoint
}

// setRespond replaces the token endpoint's behaviour.
func (f *fakeEntra) setRespond(fn func(w http.ResponseWriter, form url.Values)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = fn
}

// hold makes token answers wait until the returned func is called.
func (f *fakeEntra) hold() (releaseAll func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.release = ch
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (f *fakeEntra) provider(t *testing.T, o Options) *Provider {
	t.Helper()
	o.AuthorityHost = f.srv.URL
	o.HTTPClient = f.srv.Client()
	p, err := NewProvider(o)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// acceptSecret answers client_credentials requests carrying secret.
func (f *fakeEntra) acceptSecret(secret string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		if form.Get("grant_type") != "client_credentials" || form.Get("client_id") != testClient {
			entraError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application not found in the directory.")
			return
		}
		if form.Get("client_secret") != secret {
			entraError(w, http.StatusUnauthorized, "invalid_client",
				"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 0000")
			return
		}
		accessToken(w, "at-secret-"+strings.Fields(form.Get("scope"))[0], 3599, "")
	}
}

func accessToken(w http.ResponseWriter, token string, expiresIn int, refreshToken string) {
	body := map[string]any{"token_type": "Bearer", "expires_in": expiresIn, "ext_expires_in": expiresIn, "access_token": token}
	if refreshToken != "" {
		body["refresh_token"] = refreshToken
	}
	writeJSON(w, http.StatusOK, body)
}

func entraError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": description, "error_codes": []int{1}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// testCert is a self-signed RSA certificate and its key.
type testCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pem  []byte // certificate then key (tls.crt + tls.key)
}

func newTestCert(t *testing.T, notAfter time.Time) testCert {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return certFor(t, key, notAfter)
}

func certFor(t *testing.T, key *rsa.PrivateKey, notAfter time.Time) testCert {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(notAfter.Unix()),
		Subject:      pkix.Name{CommonName: "purchase-policy-controller"},
		NotBefore:    notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: c, key: key, pem: append(certPEM(c), keyPEM(t, key)...)}
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// acceptCertificate answers client_credentials requests whose client
// assertion is a JWT signed by cert's key, for this client and token endpoint.
func (f *fakeEntra) acceptCertificate(cert *x509.Certificate) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			entraError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: missing client_assertion.")
			return
		}
		tok, err := jwt.Parse(form.Get("client_assertion"), func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
			jwt.WithValidMethods([]string{"PS256", "RS256"}), jwt.WithIssuer(testClient), jwt.WithSubject(testClient),
			jwt.WithAudience(f.srv.URL+"/"+testTenant+"/oauth2/v2.0/token"))
		if err != nil || !tok.Valid {
			entraError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS700027: Client assertion failed signature validation. %v", err))
			return
		}
		accessToken(w, "at-cert", 3599, "")
	}
}

// acceptAssertion answers client_credentials requests whose client assertion
// is exactly assertion.
func (f *fakeEntra) acceptAssertion(assertion string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		if form.Get("client_assertion") != assertion {
			entraError(w, http.StatusUnauthorized, "invalid_client",
				"AADSTS700211: No matching federated identity record found for presented assertion "+form.Get("client_assertion")+". More text.")
			return
		}
		accessToken(w, "at-federated", 3599, "")
	}
}

// refreshTokens is the fake's set of valid delegated refresh tokens: each
// redemption invalidates the token used and issues the next one.
type refreshTokens struct {
	mu    sync.Mutex
	valid map[string]bool
	n     int
	// scopes records the scope parameter of each redemption.
	scopes []string
}

func newRefreshTokens(initial ...string) *refreshTokens {
	r := &refreshTokens{valid: map[string]bool{}}
	for _, t := range initial {
		r.valid[t] = true
	}
	return r
}

func (r *refreshTokens) respond(expiresIn int) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, form url.Values) {
		r.mu.Lock()
		defer r.mu.Unlock()
		rt := form.Get("refresh_token")
		if form.Get("grant_type") != "refresh_token" || form.Get("client_id") != testClient || !r.valid[rt] {
			entraError(w, http.StatusBadRequest, "invalid_grant",
				"AADSTS70000: The provided value for refresh_token "+rt+" is not valid. Trace ID: 1")
			return
		}
		r.scopes = append(r.scopes, form.Get("scope"))
		delete(r.valid, rt)
		r.n++
		next := fmt.Sprintf("rt-%d", r.n)
		r.valid[next] = true
		accessToken(w, fmt.Sprintf("at-delegated-%d", r.n), expiresIn, next)
	}
}

func (r *refreshTokens) add(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.valid[token] = true
}

func (r *refreshTokens) redemptions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.scopes...)
}

// containsAny reports which of secrets occurs in s.
func containsAny(s string, secrets ...string) []string {
	var found []string
	for _, v := range secrets {
		if strings.Contains(s, v) {
			found = append(found, v)
		}
	}
	return found
}
