package auth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// sink is a TLS server a redirect or a token endpoint points at; it records
// the credential form fields that reach it (names only).
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	hits   int
	fields []string
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.mu.Lock()
		s.hits++
		for _, f := range []string{"client_secret", "client_assertion", "refresh_token"} {
			if r.PostForm.Get(f) != "" {
				s.fields = append(s.fields, f)
			}
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": "stolen"})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hits != 0 {
		t.Errorf("%d requests reached the other host, carrying %v", s.hits, s.fields)
	}
}

// TestTokenEndpointRedirectsAreNeverFollowed: a 307 from the token endpoint
// would re-post the client secret, the assertion or the refresh token to
// whatever host it names; a redirect of the metadata document would move the
// token endpoint. Neither is followed, and the error says Redirected.
func TestTokenEndpointRedirectsAreNeverFollowed(t *testing.T) {
	type setup func(t *testing.T, f *fakeEntra, target string) (getToken func() error)
	secret := func(t *testing.T, f *fakeEntra, target string) func() error {
		f.setRespond(func(w http.ResponseWriter, _ url.Values) {
			w.Header().Set("Location", target+"/"+testTenant+"/oauth2/v2.0/token")
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
		cred := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret))
		return func() error { _, err := cred.GetToken(context.Background(), licensingScope); return err }
	}
	assertion := func(t *testing.T, f *fakeEntra, target string) func() error {
		f.setRespond(func(w http.ResponseWriter, _ url.Values) {
			w.Header().Set("Location", target+"/token")
			w.WriteHeader(http.StatusPermanentRedirect)
		})
		m := Material{TenantID: testTenant, ClientID: testClient, AssertionKey: "ns/sa",
			Assertion: func(context.Context) (string, error) { return "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig", nil }}
		cred := mustCredential(t, f.provider(t, Options{}), m)
		return func() error { _, err := cred.GetToken(context.Background(), licensingScope); return err }
	}
	refresh := func(t *testing.T, f *fakeEntra, target string) func() error {
		f.setRespond(func(w http.ResponseWriter, _ url.Values) {
			w.Header().Set("Location", target+"/token")
			w.WriteHeader(http.StatusTemporaryRedirect)
		})
		store := &memStore{key: "ns/secret/refreshToken", token: "rt-secret-value"}
		cred := mustCredential(t, f.provider(t, Options{}), Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: store})
		return func() error {
			_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{testScope}})
			return err
		}
	}
	cases := map[string]struct {
		setup  setup
		status int
	}{
		"client secret, 307": {secret, http.StatusTemporaryRedirect},
		"assertion, 308":     {assertion, http.StatusPermanentRedirect},
		"refresh token, 307": {refresh, http.StatusTemporaryRedirect},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			target := newSink(t)
			f := newFakeEntra(t)
			err := tc.setup(t, f, target.srv.URL)()
			if got := viewOf(t, err); got.Kind != m365.Redirected || got.StatusCode != tc.status || !strings.Contains(got.Reason, strings.TrimPrefix(target.srv.URL, "https://")) {
				t.Errorf("want Redirected (HTTP %d) naming the target, got %+v", tc.status, got)
			}
			target.check(t)
		})
	}
	t.Run("metadata document", func(t *testing.T) {
		target := newSink(t)
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.srv.URL+r.URL.Path, http.StatusFound)
		})
		srv := httptest.NewTLSServer(mux)
		t.Cleanup(srv.Close)
		p, err := NewProvider(Options{AuthorityHost: srv.URL, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mustCredential(t, p, secretMaterial(testSecret)).GetToken(context.Background(), licensingScope)
		if got := m365.KindOf(err); got != m365.Redirected {
			t.Errorf("want Redirected, got %v", err)
		}
		target.check(t)
	})
}

// TestTokenEndpointOnAnotherHostIsRefused: MSAL posts the credential to
// whatever token_endpoint the tenant's metadata names (it checks the issuer,
// not that endpoint's host). One on another host, even one the CA trusts,
// gets no request at all; the error says InvalidResponse and names that
// host, never the path, the query or the credential.
func TestTokenEndpointOnAnotherHostIsRefused(t *testing.T) {
	const assertion = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig"
	cases := map[string]Material{
		"client secret": secretMaterial(testSecret),
		"certificate": {TenantID: testTenant, ClientID: testClient,
			CertificatePEM: newTestCert(t, time.Now().Add(24*time.Hour)).pem},
		"assertion": {TenantID: testTenant, ClientID: testClient, AssertionKey: "ns/sa",
			Assertion: func(context.Context) (string, error) { return assertion, nil }},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			target := newSink(t) // same test CA as the fake Entra
			f := newFakeEntra(t)
			const path = "/elsewhere/" + testTenant + "/oauth2/v2.0/token"
			f.setTokenEndpoint(target.srv.URL + path + "?leak=1")
			_, err := mustCredential(t, f.provider(t, Options{}), m).GetToken(context.Background(), licensingScope)
			target.check(t)
			if err == nil {
				t.Fatal("GetToken succeeded with a token endpoint on another host")
			}
			targetHost := strings.TrimPrefix(target.srv.URL, "https://")
			if got := viewOf(t, err); got.Kind != m365.InvalidResponse || got.Op != opGetToken || !strings.Contains(got.Reason, targetHost) {
				t.Errorf("want InvalidResponse naming %s, got %+v", targetHost, got)
			}
			if leaked := containsAny(err.Error(), testSecret, assertion, "/elsewhere", "leak=1"); leaked != nil {
				t.Errorf("error %q quotes %v", err, leaked)
			}
			if n := f.tokenRequests.Load(); n != 0 {
				t.Errorf("%d token requests reached the fake Entra, want 0", n)
			}
		})
	}
}

// TestEchoedCredentialsAreNotQuoted: a proxy page in place of Entra's JSON
// (echoing the posted form) is described, never quoted, whatever its status.
func TestEchoedCredentialsAreNotQuoted(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusBadGateway} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			f := newFakeEntra(t)
			f.setRespond(func(w http.ResponseWriter, form url.Values) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "<html><pre>POST /token\n"+form.Encode()+"\nclient_secret: "+form.Get("client_secret")+"</pre></html>")
			})
			_, err := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret)).GetToken(context.Background(), licensingScope)
			got := viewOf(t, err)
			if !strings.HasPrefix(got.Reason, "non-JSON answer (content-type text/html, ") {
				t.Errorf("reason %q, want a description of the page", got.Reason)
			}
			if leaked := containsAny(err.Error(), testSecret, url.QueryEscape(testSecret), "<html"); leaked != nil {
				t.Errorf("error %q quotes %v", err, leaked)
			}
		})
	}
}

// TestTokenLifetimeIsBounded: an expires_in that would overflow
// time.Duration (or is not a number) never yields a token cached for ever
// or already expired.
func TestTokenLifetimeIsBounded(t *testing.T) {
	cases := map[string]struct {
		in   any
		want time.Duration
		ok   bool
	}{
		"an hour":             {float64(3599), 3599 * time.Second, true},
		"numeric string":      {"3600", time.Hour, true},
		"1e300 is capped":     {1e300, maxTokenLifetime, true},
		"9.3e9 s is capped":   {"9300000000", maxTokenLifetime, true},
		"NaN is refused":      {"NaN", 0, false},
		"zero is refused":     {float64(0), 0, false},
		"negative is refused": {"-5", 0, false},
		"a word is refused":   {"soon", 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := seconds(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("seconds(%v) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestClaimsChallengeGetsAFreshToken: a resource that answers 401 with a
// claims challenge (WWW-Authenticate: Bearer ... claims="...") wants a new
// token carrying those claims; the Graph SDK asks once with
// TokenRequestOptions.Claims set. The cached token must not be handed back
// for it, and Entra must see the claims; a request without claims is
// served from the cache again.
func TestClaimsChallengeGetsAFreshToken(t *testing.T) {
	const claims = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	f := newFakeEntra(t)
	var sawClaims []string
	accept := f.acceptSecret(testSecret)
	f.setRespond(func(w http.ResponseWriter, form url.Values) {
		f.mu.Lock()
		sawClaims = append(sawClaims, form.Get("claims"))
		f.mu.Unlock()
		accept(w, form)
	})
	cred := mustCredential(t, f.provider(t, Options{}), secretMaterial(testSecret))
	ctx := context.Background()
	for range 2 {
		if _, err := cred.GetToken(ctx, licensingScope); err != nil {
			t.Fatalf("GetToken: %v", err)
		}
	}
	if n := f.tokenRequests.Load(); n != 1 {
		t.Fatalf("two GetToken calls sent %d token requests, want 1 (cached)", n)
	}
	challenged := licensingScope
	challenged.Claims = claims
	if _, err := cred.GetToken(ctx, challenged); err != nil {
		t.Fatalf("GetToken with claims: %v", err)
	}
	if n := f.tokenRequests.Load(); n != 2 {
		t.Fatalf("a claims challenge sent %d token requests in all, want 2: the cached token was handed back", n)
	}
	f.mu.Lock()
	got := sawClaims[1]
	f.mu.Unlock()
	if !strings.Contains(got, `"nbf"`) {
		t.Errorf("the token request for the challenge carried claims %q, want the challenge's %s", got, claims)
	}
	if _, err := cred.GetToken(ctx, licensingScope); err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if n := f.tokenRequests.Load(); n != 2 {
		t.Errorf("after the challenge, a plain GetToken sent a token request (%d in all), want the renewed token from the cache", n)
	}
}
