package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

var licensingScope = policy.TokenRequestOptions{Scopes: []string{testScope}}

func secretMaterial(secret string) Material {
	return Material{TenantID: testTenant, ClientID: testClient, ClientSecret: secret}
}

func mustCredential(t *testing.T, p *Provider, m Material) azcore.TokenCredential {
	t.Helper()
	c, err := p.Credential(m)
	if err != nil {
		t.Fatalf("Credential: %v", err)
	}
	return c
}

// errorView is what a reconciler reads from a token error.
type errorView struct {
	Kind       m365.Kind
	Op         string
	StatusCode int
	Code       string
	Reason     string
	RetryAfter time.Duration
}

func viewOf(t *testing.T, err error) errorView {
	t.Helper()
	e, ok := m365.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *m365.Error", err, err)
	}
	return errorView{Kind: e.Kind, Op: e.Op, StatusCode: e.StatusCode, Code: e.Code, Reason: e.Reason, RetryAfter: e.RetryAfter}
}

func TestClientSecretObtainsToken(t *testing.T) {
	f := newFakeEntra(t)
	cred := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret))
	tok, err := cred.GetToken(context.Background(), licensingScope)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if diff := cmp.Diff("at-secret-"+testScope, tok.Token); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if until := time.Until(tok.ExpiresOn); until < 50*time.Minute {
		t.Errorf("token expires in %s, want about an hour", until)
	}
}

func TestTokenErrorsAreTypedAndSecretFree(t *testing.T) {
	cases := map[string]struct {
		reason string
		status int
		header http.Header
		body   string
		want   errorView
	}{
		"wrong secret": {
			reason: "Entra's answer to a bad secret is a user error with the AADSTS code's first sentence",
			status: http.StatusUnauthorized,
			body:   `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is the value.\r\nTrace ID: 1"}`,
			want:   errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 401, Code: "invalid_client", Reason: "AADSTS7000215: Invalid client secret provided."},
		},
		"secret echoed by the server": {
			reason: "a secret in the description is redacted",
			status: http.StatusBadRequest,
			body:   `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret ` + testSecret + ` provided. More."}`,
			want:   errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 400, Code: "invalid_client", Reason: "AADSTS7000215: Invalid client secret [REDACTED] provided."},
		},
		"app not in tenant": {
			reason: "400 unauthorized_client means the app registration is missing: user error",
			status: http.StatusBadRequest,
			body:   `{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found in the directory 'y'. This can happen if ..."}`,
			want:   errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 400, Code: "unauthorized_client", Reason: "AADSTS700016: Application with identifier 'x' was not found in the directory 'y'."},
		},
		"federated audience mismatch": {
			reason: "Entra says invalid_request for a federation mismatch, but the credential is what is wrong",
			status: http.StatusBadRequest,
			body:   `{"error":"invalid_request","error_description":"AADSTS700212: No matching federated identity record found for presented assertion audience 'x'."}`,
			want:   errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 400, Code: "invalid_request", Reason: "AADSTS700212: No matching federated identity record found for presented assertion audience 'x'."},
		},
		"bad scope": {
			reason: "other 400s are bad requests, not credential failures",
			status: http.StatusBadRequest,
			body:   `{"error":"invalid_scope","error_description":"AADSTS1002012: The provided value for scope is not valid."}`,
			want:   errorView{Kind: m365.BadRequest, Op: "get token", StatusCode: 400, Code: "invalid_scope", Reason: "AADSTS1002012: The provided value for scope is not valid."},
		},
		"throttled": {
			reason: "429 carries Retry-After",
			status: http.StatusTooManyRequests,
			header: http.Header{"Retry-After": {"7"}},
			body:   `{"error":"temporarily_unavailable","error_description":"AADSTS50196: Too many requests."}`,
			want:   errorView{Kind: m365.Throttled, Op: "get token", StatusCode: 429, Code: "temporarily_unavailable", Reason: "AADSTS50196: Too many requests.", RetryAfter: 7 * time.Second},
		},
		"server error": {
			reason: "5xx is retried with backoff",
			status: http.StatusInternalServerError,
			body:   `{"error":"server_error","error_description":"AADSTS90033: A transient error has occurred. Please try again."}`,
			want:   errorView{Kind: m365.Transient, Op: "get token", StatusCode: 500, Code: "server_error", Reason: "AADSTS90033: A transient error has occurred."},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeEntra(t)
			f.setRespond(func(w http.ResponseWriter, _ url.Values) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			cred := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret))
			_, err := cred.GetToken(context.Background(), licensingScope)
			if err == nil {
				t.Fatalf("%s: GetToken succeeded", tc.reason)
			}
			if diff := cmp.Diff(tc.want, viewOf(t, err)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
			if leaked := containsAny(err.Error(), testSecret); leaked != nil {
				t.Errorf("error message %q shows the secret", err.Error())
			}
			if got := f.tokenRequests.Load(); got != 1 {
				t.Errorf("%d token requests, want 1 (no retries inside the credential)", got)
			}
		})
	}
}

func TestUnknownTenantIsUnauthorized(t *testing.T) {
	f := newFakeEntra(t)
	m := secretMaterial(testSecret)
	m.TenantID = "00000000-0000-0000-0000-000000000000"
	_, err := mustCredential(t, f.provider(t, Options{}), m).GetToken(context.Background(), licensingScope)
	if diff := cmp.Diff(m365.Unauthorized, m365.KindOf(err)); diff != "" {
		t.Errorf("kind of %v (-want +got):\n%s", err, diff)
	}
}

func TestThrottledTenantWaitsForRetryAfter(t *testing.T) {
	f := newFakeEntra(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	gate := m365.NewGate(clock)
	f.setRespond(func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Retry-After", "30")
		entraError(w, http.StatusTooManyRequests, "temporarily_unavailable", "AADSTS50196: Too many requests.")
	})
	cred := mustCredential(t, f.provider(t, Options{Gate: gate, Now: clock}), secretMaterial(testSecret))

	_, err := cred.GetToken(context.Background(), licensingScope)
	if got := m365.RetryAfterOf(err); got != 30*time.Second {
		t.Fatalf("first call: retry after %s (%v), want 30s", got, err)
	}
	f.setRespond(f.acceptSecret(testSecret))
	now = now.Add(10 * time.Second)
	_, err = cred.GetToken(context.Background(), licensingScope)
	if diff := cmp.Diff(errorView{Kind: m365.Throttled, Op: "get token", Reason: "waiting for an earlier Retry-After from " + hostOf(t, f.srv.URL), RetryAfter: 20 * time.Second}, viewOf(t, err)); diff != "" {
		t.Errorf("call inside the Retry-After window (-want +got):\n%s", diff)
	}
	if got := f.tokenRequests.Load(); got != 1 {
		t.Errorf("%d token requests, want 1: the gate must keep the second call home", got)
	}
	now = now.Add(21 * time.Second)
	if _, err := cred.GetToken(context.Background(), licensingScope); err != nil {
		t.Errorf("call after Retry-After: %v", err)
	}
}

func hostOf(t *testing.T, origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestTransportFailuresAreTransient(t *testing.T) {
	t.Run("server down", func(t *testing.T) {
		f := newFakeEntra(t)
		p := f.provider(t, Options{})
		f.srv.Close()
		_, err := mustCredential(t, p, secretMaterial(testSecret)).GetToken(context.Background(), licensingScope)
		if diff := cmp.Diff(m365.Transient, m365.KindOf(err)); diff != "" {
			t.Errorf("kind of %v (-want +got):\n%s", err, diff)
		}
	})
	t.Run("answer too slow", func(t *testing.T) {
		f := newFakeEntra(t)
		t.Cleanup(f.hold())
		p := f.provider(t, Options{CallTimeout: 300 * time.Millisecond})
		_, err := mustCredential(t, p, secretMaterial(testSecret)).GetToken(context.Background(), licensingScope)
		if diff := cmp.Diff(errorView{Kind: m365.Transient, Op: "get token", Reason: "timed out"}, viewOf(t, err)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("caller gave up", func(t *testing.T) {
		f := newFakeEntra(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret)).GetToken(ctx, licensingScope)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

func TestCredentialCache(t *testing.T) {
	f := newFakeEntra(t)
	p := f.provider(t, Options{})
	first := mustCredential(t, p, secretMaterial(testSecret))
	again := mustCredential(t, p, secretMaterial(testSecret))
	if first != again {
		t.Fatal("same material gave a new credential; its cached tokens would be lost")
	}
	for range 2 {
		if _, err := again.GetToken(context.Background(), licensingScope); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.tokenRequests.Load(); got != 1 {
		t.Errorf("%d token requests for two GetToken calls, want 1", got)
	}

	const rotated = "rotated-secret"
	f.setRespond(f.acceptSecret(rotated))
	next := mustCredential(t, p, secretMaterial(rotated))
	if next == first {
		t.Fatal("rotated secret reused the old credential")
	}
	if _, err := next.GetToken(context.Background(), licensingScope); err != nil {
		t.Fatalf("rotated secret: %v", err)
	}
	other := secretMaterial(rotated)
	other.TenantID = "contoso.onmicrosoft.com"
	if mustCredential(t, p, other) == next {
		t.Error("another tenant with the same secret shared a credential")
	}
}

func TestCredentialCacheIsBounded(t *testing.T) {
	p, err := NewProvider(Options{AuthorityHost: "https://login.example", CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	a := mustCredential(t, p, secretMaterial("a"))
	mustCredential(t, p, secretMaterial("b"))
	if mustCredential(t, p, secretMaterial("a")) != a {
		t.Fatal("a was evicted while the cache had room")
	}
	mustCredential(t, p, secretMaterial("c")) // evicts b, the least recently used
	if got := p.cache.len(); got != 2 {
		t.Errorf("cache holds %d credentials, want 2", got)
	}
	if mustCredential(t, p, secretMaterial("a")) != a {
		t.Error("a, recently used, was evicted instead of b")
	}
}

func TestConcurrentCallsShareOneTokenRequest(t *testing.T) {
	f := newFakeEntra(t)
	release := f.hold()
	t.Cleanup(release)
	cred := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret))
	tokens := getConcurrently(t, cred, 8, func() { <-f.arrived; release() })
	for _, tok := range tokens {
		if tok != "at-secret-"+testScope {
			t.Errorf("got token %q", tok)
		}
	}
	if got := f.tokenRequests.Load(); got != 1 {
		t.Errorf("%d token requests for 8 concurrent calls, want 1", got)
	}
}

// getConcurrently starts n GetToken calls, runs whileRunning once all have
// been started, and returns the tokens.
func getConcurrently(t *testing.T, cred azcore.TokenCredential, n int, whileRunning func()) []string {
	t.Helper()
	var (
		wg, started sync.WaitGroup
		mu          sync.Mutex
		tokens      []string
	)
	started.Add(n)
	for range n {
		wg.Go(func() {
			started.Done()
			tok, err := cred.GetToken(context.Background(), licensingScope)
			if err != nil {
				t.Errorf("GetToken: %v", err)
				return
			}
			mu.Lock()
			tokens = append(tokens, tok.Token)
			mu.Unlock()
		})
	}
	started.Wait()
	whileRunning()
	wg.Wait()
	return tokens
}

func TestClientCertificate(t *testing.T) {
	f := newFakeEntra(t)
	c := newTestCert(t, time.Now().Add(24*time.Hour))
	f.setRespond(f.acceptCertificate(c.cert))
	p := f.provider(t, Options{})
	tok, err := mustCredential(t, p, Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: c.pem}).GetToken(context.Background(), licensingScope)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if tok.Token != "at-cert" {
		t.Errorf("token %q, want at-cert", tok.Token)
	}

	// A certificate Entra does not know is refused as a user error.
	other := newTestCert(t, time.Now().Add(24*time.Hour))
	_, err = mustCredential(t, p, Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: other.pem}).GetToken(context.Background(), licensingScope)
	if diff := cmp.Diff(m365.Unauthorized, m365.KindOf(err)); diff != "" {
		t.Errorf("unknown certificate: kind of %v (-want +got):\n%s", err, diff)
	}
}

func TestInvalidMaterial(t *testing.T) {
	good := newTestCert(t, time.Now().Add(time.Hour))
	stranger := newTestCert(t, time.Now().Add(time.Hour))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certOnly := certPEM(good.cert)
	cases := map[string]struct {
		reason string
		m      Material
		want   string
	}{
		"no method": {
			reason: "a policy must name one way to authenticate",
			m:      Material{TenantID: testTenant, ClientID: testClient},
			want:   "no authentication method set (want one of client secret, certificate, workload identity, refresh token)",
		},
		"two methods": {
			reason: "two methods are ambiguous",
			m:      Material{TenantID: testTenant, ClientID: testClient, ClientSecret: "x", RefreshTokens: &memStore{key: "ns/s/k"}},
			want:   "more than one authentication method set: clientSecret, refreshToken",
		},
		"empty tenant": {
			reason: "the tenant is part of the authority URL",
			m:      Material{ClientID: testClient, ClientSecret: "x"},
			want:   "tenant ID is empty",
		},
		"tenant with a path": {
			reason: "a tenant must not change the authority URL's path",
			m:      Material{TenantID: "a/../b", ClientID: testClient, ClientSecret: "x"},
			want:   `tenant ID "a/../b" may hold only letters, digits, '-' and '.'`,
		},
		"empty client": {
			reason: "the client ID names the app registration",
			m:      Material{TenantID: testTenant, ClientSecret: "x"},
			want:   "client ID is empty",
		},
		"certificate without key": {
			reason: "tls.key was left out",
			m:      Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: certOnly},
			want:   "certificate: no private key found in PEM",
		},
		"not PEM": {
			reason: "the Secret holds something else",
			m:      Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: []byte("not a certificate")},
			want:   "certificate: no certificate found in PEM",
		},
		"key of another certificate": {
			reason: "tls.crt and tls.key do not belong together",
			m:      Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: append(certPEM(good.cert), keyPEM(t, stranger.key)...)},
			want:   "certificate: private key matches none of the certificates in PEM",
		},
		"EC key": {
			reason: "Entra client assertions are RSA-signed",
			m:      Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: append(certPEM(good.cert), keyPEM(t, ecKey)...)},
			want:   "certificate: private key is *ecdsa.PrivateKey, Entra needs an RSA key",
		},
		"encrypted key": {
			reason: "there is no passphrase to decrypt it",
			m:      Material{TenantID: testTenant, ClientID: testClient, CertificatePEM: append(certPEM(good.cert), pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})...)},
			want:   "certificate: encrypted private keys are not supported",
		},
		"assertion without key": {
			reason: "the cache key needs the assertion source",
			m:      Material{TenantID: testTenant, ClientID: testClient, Assertion: func(context.Context) (string, error) { return "", nil }},
			want:   "workload identity: assertion key is empty",
		},
	}
	p, err := NewProvider(Options{AuthorityHost: "https://login.example"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := p.Credential(tc.m)
			var ice *InvalidCredentialError
			if !errors.As(err, &ice) {
				t.Fatalf("%s: got %v, want *InvalidCredentialError", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, ice.Reason); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCertificateNotAfter(t *testing.T) {
	leafExpiry := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	caExpiry := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	leaf := newTestCert(t, leafExpiry)
	ca := newTestCert(t, caExpiry)
	cases := map[string]struct {
		reason string
		pem    []byte
		want   time.Time
		err    bool
	}{
		"certificate and key": {reason: "tls.crt + tls.key", pem: leaf.pem, want: leafExpiry},
		"key matches the second certificate": {
			reason: "the leaf is the certificate of the key, whatever the order",
			pem:    append(append(certPEM(ca.cert), certPEM(leaf.cert)...), keyPEM(t, leaf.key)...),
			want:   leafExpiry,
		},
		"certificate only":   {reason: "without a key the first certificate is the leaf", pem: certPEM(leaf.cert), want: leafExpiry},
		"no certificate":     {reason: "nothing to report", pem: keyPEM(t, leaf.key), err: true},
		"not PEM":            {reason: "garbage", pem: []byte("garbage"), err: true},
		"broken certificate": {reason: "bad DER", pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}}), err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CertificateNotAfter(tc.pem)
			if tc.err {
				var ice *InvalidCredentialError
				if !errors.As(err, &ice) {
					t.Fatalf("%s: got %v, %v; want *InvalidCredentialError", tc.reason, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, got.UTC()); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestWorkloadIdentity(t *testing.T) {
	const assertion = "eyJ.service-account-token.sig"
	workload := func(get func(context.Context) (string, error)) Material {
		return Material{TenantID: testTenant, ClientID: testClient, Assertion: get, AssertionKey: "m365/m365-contoso"}
	}
	t.Run("assertion accepted", func(t *testing.T) {
		f := newFakeEntra(t)
		f.setRespond(f.acceptAssertion(assertion))
		tok, err := mustCredential(t, f.provider(t, Options{}), workload(func(context.Context) (string, error) { return assertion, nil })).GetToken(context.Background(), licensingScope)
		if err != nil {
			t.Fatalf("GetToken: %v", err)
		}
		if tok.Token != "at-federated" {
			t.Errorf("token %q", tok.Token)
		}
	})
	t.Run("assertion refused", func(t *testing.T) {
		f := newFakeEntra(t)
		f.setRespond(f.acceptAssertion("another"))
		_, err := mustCredential(t, f.provider(t, Options{}), workload(func(context.Context) (string, error) { return assertion, nil })).GetToken(context.Background(), licensingScope)
		want := errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 401, Code: "invalid_client",
			Reason: "AADSTS700211: No matching federated identity record found for presented assertion [REDACTED]."}
		if diff := cmp.Diff(want, viewOf(t, err)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if leaked := containsAny(err.Error(), assertion); leaked != nil {
			t.Errorf("error %q shows the assertion", err)
		}
	})
	t.Run("service account missing", func(t *testing.T) {
		f := newFakeEntra(t)
		// As the controller's ServiceAccount token source reports a missing ServiceAccount.
		notFound := errors.New(`serviceaccounts "m365-contoso" not found`)
		_, err := mustCredential(t, f.provider(t, Options{}), workload(func(context.Context) (string, error) { return "", Unavailable(notFound) })).GetToken(context.Background(), licensingScope)
		if diff := cmp.Diff(errorView{Kind: m365.Unauthorized, Op: "get token", Code: "credential_unavailable", Reason: "service account token"}, viewOf(t, err)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if !errors.Is(err, notFound) {
			t.Errorf("the source's error is not reachable through %v", err)
		}
		if got := f.tokenRequests.Load(); got != 0 {
			t.Errorf("%d token requests without an assertion", got)
		}
	})
}
