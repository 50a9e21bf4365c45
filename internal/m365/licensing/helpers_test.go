package licensing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

const (
	testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	testToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.test-access-token"
)

// fakeCred is an azcore.TokenCredential whose answer is a function.
type fakeCred struct {
	get func(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error)
}

func (f fakeCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return f.get(ctx, o)
}

// staticCred hands out testToken and records the options of every request.
type staticCred struct {
	mu   sync.Mutex
	seen []policy.TokenRequestOptions
}

func (s *staticCred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, o)
	return azcore.AccessToken{Token: testToken, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// countingServer is a TLS server that counts the requests reaching handler.
type countingServer struct {
	*httptest.Server
	mu    sync.Mutex
	count int
}

func newServer(t *testing.T, handler http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.count++
		s.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *countingServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// newClient returns a client for srv; edit may change the options first.
func newClient(t *testing.T, srv *countingServer, edit func(*licensing.Options)) *licensing.Client {
	t.Helper()
	o := licensing.Options{Endpoint: srv.URL, HTTPClient: srv.Client()}
	if edit != nil {
		edit(&o)
	}
	c, err := licensing.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
