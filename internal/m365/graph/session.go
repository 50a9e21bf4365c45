package graph

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// session is the request pipeline of one call: an adapter that authenticates
// with the caller's credential for the tenant, and a recorder of what the
// wire answered last.
type session struct {
	adapter *msgraphsdk.GraphRequestAdapter
	rec     *recorder
	baseURL string
}

// pathParams are the URL template parameters every request builder starts from.
func (s *session) pathParams() map[string]string {
	return map[string]string{"baseurl": s.baseURL}
}

// begin builds the pipeline of one call for tenantID:
// kiota middlewares (no retry, redirect or compression handler) → recorder →
// the shared pipeline (m365.Transport: gate, no redirects, capped bodies) →
// base transport. Tokens are asked for m365.GraphScope with the tenant set,
// and are only attached to requests for the Graph endpoint's host.
//
// Tokens are asked for without CAE: declaring the CP1 capability promises to
// handle claims challenges on every credential, which the refresh-token one
// does not. A 401 with a claims challenge still gets the SDK's one retry with
// a token asked for with those claims (which app-only credentials honour).
func (c *Client) begin(tenantID string, cred azcore.TokenCredential) (*session, error) {
	if cred == nil {
		return nil, &tokenError{err: &m365.Error{Kind: m365.Unauthorized, Reason: "no credential"}}
	}
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHostsAndObservabilityOptionsAndIsCaeEnabled(
		tenantCredential{tenantID: tenantID, cred: cred}, []string{m365.GraphScope}, []string{c.host}, kiotaauth.ObservabilityOptions{}, false)
	if err != nil {
		return nil, err
	}
	rec := &recorder{next: m365.Transport(tenantID, c.gate, c.base)}
	hc := &http.Client{
		Transport:     khttp.NewCustomTransportWithParentTransport(rec, middlewares()...),
		CheckRedirect: m365.NoRedirects,
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		return nil, err
	}
	adapter.SetBaseUrl(c.baseURL)
	return &session{adapter: adapter, rec: rec, baseURL: c.baseURL}, nil
}

// middlewares are the Graph SDK's default middlewares without kiota's retry,
// redirect and compression handlers: a throttled or failing request comes
// straight back (the gate has recorded its Retry-After, and the reconciler
// decides when to try again), a 3xx is never followed (it would turn a write
// into a GET and could carry the token to another port of an allowed host),
// and a write's body is the plain JSON Graph documents (the compression
// handler gzips it, and sends it again uncompressed on a 415).
func middlewares() []khttp.Middleware {
	opts := msgraphsdk.GetDefaultClientOptions()
	all := msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)
	out := make([]khttp.Middleware, 0, len(all))
	for _, m := range all {
		switch m.(type) {
		case *khttp.RetryHandler, *khttp.RedirectHandler, *khttp.CompressionHandler:
			continue
		}
		out = append(out, m)
	}
	return out
}

var registerOnce sync.Once

// registerSerializers runs the SDK's one-time global set-up (JSON/text/form
// serializers, backing store) once per process. Building a GraphServiceClient
// writes package globals each time, which would race with requests of other
// tenants in flight; calls therefore use request builders on a bare adapter.
func registerSerializers() {
	registerOnce.Do(func() {
		auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(
			tenantCredential{}, []string{m365.GraphScope}, []string{"graph.microsoft.com"})
		if err != nil {
			return
		}
		adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, &http.Client{})
		if err != nil {
			return
		}
		msgraphsdk.NewGraphServiceClient(adapter)
	})
}

// tenantCredential asks its credential for tokens of one tenant: the kiota
// provider leaves TokenRequestOptions.TenantID empty, which a credential
// shared by a partner across customer tenants cannot resolve.
type tenantCredential struct {
	tenantID string
	cred     azcore.TokenCredential
}

// GetToken sets the tenant (unless the caller did) and marks failures as
// token errors so they are told apart from Graph's answers.
func (t tenantCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if t.cred == nil {
		return azcore.AccessToken{}, &tokenError{err: &m365.Error{Kind: m365.Unauthorized, Reason: "no credential"}}
	}
	if opts.TenantID == "" {
		opts.TenantID = t.tenantID
	}
	tok, err := t.cred.GetToken(ctx, opts)
	if err != nil {
		return azcore.AccessToken{}, &tokenError{err: err}
	}
	return tok, nil
}

// tokenError is a failure to get a token for a call.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "token request failed: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// maxErrorBody bounds how much of a failed response's body is kept.
const maxErrorBody = 64 << 10

// recorder sits between kiota's middlewares and the gate and keeps what the
// last request of the call met: a transport error (the gate's refusal
// included), a non-2xx response with its body, or a 2xx (answered). Errors
// are classified from this record, whatever kiota's error types keep or lose.
type recorder struct {
	next http.RoundTripper

	mu       sync.Mutex
	err      error
	resp     *http.Response // body already consumed into body
	body     []byte
	answered bool // the last response was a 2xx
}

// RoundTrip sends req and records the outcome; a failed response's body is
// read and replaced so kiota can still parse it.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		r.set(err, nil, nil)
		return nil, err
	}
	if resp.StatusCode < 300 {
		r.set(nil, nil, nil) // answered
		return resp, nil
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	if rerr != nil {
		r.set(rerr, nil, nil)
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	snapshot := *resp
	snapshot.Body = http.NoBody
	r.set(nil, &snapshot, body)
	return resp, nil
}

// set records an outcome: a transport error, a non-2xx response, or
// neither (a 2xx).
func (r *recorder) set(err error, resp *http.Response, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.resp, r.body, r.answered = err, resp, body, err == nil && resp == nil
}

// last returns the recorded outcome of the latest request.
func (r *recorder) last() (resp *http.Response, body []byte, err error) {
	if r == nil {
		return nil, nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resp, r.body, r.err
}

// answeredOK tells whether the latest request got a 2xx: an error after it
// is the answer's, not the network's.
func (r *recorder) answeredOK() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered
}
