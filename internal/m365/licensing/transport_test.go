package licensing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

const (
	testCorrelation = "0f8fad5b-d9cb-469f-a165-70867728950e"
	testSecret      = "s3cr3t~Value.FromTheSecret"
)

// wantErr is the part of an *m365.Error a user sees in conditions and events.
type wantErr struct {
	Kind          m365.Kind
	StatusCode    int
	Code          string
	Reason        string
	RetryAfter    time.Duration
	CorrelationID string
}

func project(e *m365.Error) wantErr {
	return wantErr{Kind: e.Kind, StatusCode: e.StatusCode, Code: e.Code, Reason: e.Reason, RetryAfter: e.RetryAfter, CorrelationID: e.CorrelationID}
}

// respond answers with status, headers and body.
func respond(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hangUp closes the connection without answering.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// slow answers only after the client has given up (or, should the client
// never give up, after a bound far above the 50ms call timeout, so that the
// test fails instead of hanging).
func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
		// The client hung up: answer nothing, so no late response can race
		// the client's own timeout.
		panic(http.ErrAbortHandler)
	case <-time.After(5 * time.Second):
		_, _ = io.WriteString(w, `{"items":[]}`)
	}
}

func listProducts(ctx context.Context, c *licensing.Client, cred azcore.TokenCredential) error {
	_, _, err := c.For(testTenant, cred).ListProducts(ctx)
	return err
}

func setCopilot(ctx context.Context, c *licensing.Client, cred azcore.TokenCredential) error {
	_, err := c.For(testTenant, cred).SetProduct(ctx, "CFQ7TTC0MM8R", licensing.ValueDisabled)
	return err
}

func TestErrors(t *testing.T) {
	clock := newFakeClock()
	secretLeakingCred := fakeCred{get: func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, errors.New("AADSTS7000215: Invalid client secret provided: " + testSecret)
	}}
	cases := map[string]struct {
		reason   string
		handler  http.HandlerFunc
		cred     azcore.TokenCredential
		call     func(context.Context, *licensing.Client, azcore.TokenCredential) error
		want     wantErr
		wantSent int
		timeout  time.Duration // Options.Timeout; 10s when zero
		// anySent skips the request count: on a loaded machine a 50ms
		// deadline may pass during the TLS handshake, which is a timeout too.
		anySent bool
	}{
		"429 retry-after seconds": {
			reason:  "throttled, and the caller learns how long to wait",
			handler: respond(429, `{"errorCode":"TooManyRequests","reason":"Rate limit exceeded."}`, "Retry-After", "120"),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.Throttled, StatusCode: 429, Code: "TooManyRequests", Reason: "Rate limit exceeded.", RetryAfter: 120 * time.Second, CorrelationID: testCorrelation},
		},
		"429 retry-after date": {
			reason:  "an HTTP-date Retry-After is read against the injected clock",
			handler: respond(429, ``, "Retry-After", clock.Now().Add(90*time.Second).Format(http.TimeFormat)),
			call:    setCopilot, wantSent: 1,
			want: wantErr{Kind: m365.Throttled, StatusCode: 429, RetryAfter: 90 * time.Second, CorrelationID: testCorrelation},
		},
		"403": {
			reason:  "missing role or permission: the user must act, with Microsoft's words",
			handler: respond(403, `{"errorCode":"Forbidden","reason":"Caller does not have the required permission."}`),
			call:    setCopilot, wantSent: 1,
			want: wantErr{Kind: m365.Forbidden, StatusCode: 403, Code: "Forbidden", Reason: "Caller does not have the required permission.", CorrelationID: testCorrelation},
		},
		"404 unknown product": {
			reason:  "an unknown product ID is NotFound with the reason",
			handler: respond(404, `{"errorCode":"Unknown","reason":"GetProductDetailsByProductIdAsync failed. Product not found."}`),
			call:    setCopilot, wantSent: 1,
			want: wantErr{Kind: m365.NotFound, StatusCode: 404, Code: "Unknown", Reason: "GetProductDetailsByProductIdAsync failed. Product not found.", CorrelationID: testCorrelation},
		},
		"400": {
			reason:  "a refused request is BadRequest with errorCode and reason",
			handler: respond(400, `{"errorCode":"BadRequest","reason":"Invalid scope."}`),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.BadRequest, StatusCode: 400, Code: "BadRequest", Reason: "Invalid scope.", CorrelationID: testCorrelation},
		},
		"500": {
			reason:  "server errors are retried with backoff",
			handler: respond(500, `{"errorCode":"InternalError","reason":"Something went wrong."}`),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.Transient, StatusCode: 500, Code: "InternalError", Reason: "Something went wrong.", CorrelationID: testCorrelation},
		},
		"503 without retry-after": {
			reason:  "an unavailable service is Transient",
			handler: respond(503, `Service Unavailable`, "Content-Type", "text/plain; charset=utf-8"),
			call:    setCopilot, wantSent: 1,
			want: wantErr{Kind: m365.Transient, StatusCode: 503, Reason: "non-JSON answer (content-type text/plain, 19 bytes)", CorrelationID: testCorrelation},
		},
		"connection closed": {
			reason:  "a connection closed without an answer is Transient",
			handler: hangUp,
			call:    setCopilot, wantSent: 1,
			want: wantErr{Kind: m365.Transient, Reason: "connection failed", CorrelationID: testCorrelation},
		},
		"timeout": {
			reason:  "a server slower than Options.Timeout is Transient",
			handler: slow,
			call:    listProducts, anySent: true, timeout: 50 * time.Millisecond,
			want: wantErr{Kind: m365.Transient, Reason: "timed out", CorrelationID: testCorrelation},
		},
		"malformed answer": {
			reason:  "a 200 that is not the expected JSON is InvalidResponse (retried), never an empty list",
			handler: respond(200, `<html>maintenance</html>`),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.InvalidResponse, StatusCode: 200, Reason: "the answer is not the expected JSON", CorrelationID: testCorrelation},
		},
		"answer without items": {
			reason:  "a 200 JSON object without an items array is no product list, never an empty one",
			handler: respond(200, `{"value":[]}`),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.InvalidResponse, StatusCode: 200, Reason: "the answer is not the expected JSON", CorrelationID: testCorrelation},
		},
		"oversized answer": {
			reason:  "an answer beyond the shared size cap is refused, even when it is valid JSON",
			handler: respond(200, strings.Repeat(" ", m365.MaxResponseBytes)+`{"items":[]}`),
			call:    listProducts, wantSent: 1,
			want: wantErr{Kind: m365.InvalidResponse, StatusCode: 200, Reason: "the answer is larger than 8 MiB", CorrelationID: testCorrelation},
		},
		"token error": {
			reason:  "a failing credential is Unauthorized, nothing is sent, the credential's text is not repeated",
			handler: respond(200, `{"items":[]}`),
			cred:    secretLeakingCred,
			call:    listProducts, wantSent: 0,
			want: wantErr{Kind: m365.Unauthorized, Reason: "could not get a token for the licensing API", CorrelationID: testCorrelation},
		},
		"empty value": {
			reason:  "a PUT without a value is refused before anything is sent",
			handler: respond(200, ``),
			call: func(ctx context.Context, c *licensing.Client, cred azcore.TokenCredential) error {
				_, err := c.For(testTenant, cred).SetOfferType(ctx, "SaaS", "")
				return err
			},
			want: wantErr{Kind: m365.BadRequest, Reason: "no policy value given"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, tc.handler)
			c := newClient(t, srv, func(o *licensing.Options) {
				o.Timeout = 10 * time.Second
				if tc.timeout != 0 {
					o.Timeout = tc.timeout
				}
				o.Now = clock.Now
				o.CorrelationID = func() string { return testCorrelation }
			})
			cred := tc.cred
			if cred == nil {
				cred = &staticCred{}
			}
			err := tc.call(context.Background(), c, cred)
			e, ok := m365.AsError(err)
			if !ok {
				t.Fatalf("%s: want *m365.Error, got %T %v", tc.reason, err, err)
			}
			if diff := cmp.Diff(tc.want, project(e)); diff != "" {
				t.Errorf("%s: error (-want +got):\n%s", tc.reason, diff)
			}
			if got := srv.Requests(); !tc.anySent && got != tc.wantSent {
				t.Errorf("requests reaching the server: want %d, got %d", tc.wantSent, got)
			}
			if msg := err.Error(); strings.Contains(msg, testToken) || strings.Contains(msg, testSecret) {
				t.Errorf("error message leaks a token or secret: %s", msg)
			}
		})
	}
}

// TestTokenErrorPassesThrough checks that an *m365.Error from the credential
// (the auth package's own classification) reaches the caller untouched.
func TestTokenErrorPassesThrough(t *testing.T) {
	authErr := &m365.Error{Kind: m365.Forbidden, Op: "get token", Code: "AADSTS50105", Reason: "user not assigned to a role"}
	srv := newServer(t, respond(200, `{"items":[]}`))
	c := newClient(t, srv, nil)
	cred := fakeCred{get: func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		return azcore.AccessToken{}, authErr
	}}
	_, _, err := c.For(testTenant, cred).ListProducts(context.Background())
	if err != authErr { //nolint:errorlint // identity is the point
		t.Errorf("want the credential's error unchanged, got %v", err)
	}
	if authErr.CorrelationID != "" || authErr.Op != "get token" {
		t.Errorf("the credential's error was modified: %+v", authErr)
	}
	if srv.Requests() != 0 {
		t.Errorf("a request was sent without a token")
	}
}

// TestCanceledContext checks that a caller's cancellation is not dressed up
// as a Microsoft error.
func TestCanceledContext(t *testing.T) {
	srv := newServer(t, slow)
	c := newClient(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cred := fakeCred{get: func(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
		cancel()
		return azcore.AccessToken{Token: testToken}, nil
	}}
	_, _, err := c.For(testTenant, cred).ListProducts(ctx)
	if !errors.Is(err, context.Canceled) || m365.KindOf(err) != "" {
		t.Errorf("want context.Canceled, got %v", err)
	}
}

// TestGate checks that after a Retry-After no request for the tenant leaves
// before the time has passed, and that requests flow again afterwards.
func TestGate(t *testing.T) {
	cases := map[string]struct {
		reason     string
		retryAfter func(now time.Time) string
		wait       time.Duration
	}{
		"seconds": {
			reason:     "Retry-After in seconds",
			retryAfter: func(time.Time) string { return "120" },
			wait:       120 * time.Second,
		},
		"http date": {
			reason:     "Retry-After as an HTTP date",
			retryAfter: func(now time.Time) string { return now.Add(90 * time.Second).Format(http.TimeFormat) },
			wait:       90 * time.Second,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			throttle := true
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if throttle {
					respond(429, ``, "Retry-After", tc.retryAfter(clock.Now()))(w, r)
					return
				}
				_, _ = io.WriteString(w, `{"items":[]}`)
			})
			c := newClient(t, srv, func(o *licensing.Options) { o.Now = clock.Now })
			cred := &staticCred{}
			ctx := context.Background()

			if err := setCopilot(ctx, c, cred); m365.RetryAfterOf(err) != tc.wait {
				t.Fatalf("%s: first call: want Throttled for %s, got %v", tc.reason, tc.wait, err)
			}
			throttle = false
			clock.Advance(tc.wait - time.Second)
			err := listProducts(ctx, c, cred)
			if m365.KindOf(err) != m365.Throttled || m365.RetryAfterOf(err) != time.Second {
				t.Errorf("%s: call inside the window: want Throttled for 1s, got %v", tc.reason, err)
			}
			if e, _ := m365.AsError(err); e == nil || e.Op != "list products" || e.CorrelationID == "" {
				t.Errorf("gate refusal should name the call and carry a correlation id: %+v", e)
			}
			if got := srv.Requests(); got != 1 {
				t.Errorf("%s: a request reached the server inside the Retry-After window (%d requests)", tc.reason, got)
			}
			clock.Advance(time.Second)
			if err := listProducts(ctx, c, cred); err != nil {
				t.Errorf("%s: call after the window: %v", tc.reason, err)
			}
			if got := srv.Requests(); got != 2 {
				t.Errorf("want 2 requests after the window, got %d", got)
			}
		})
	}
}

// TestGateIsPerTenant checks that one tenant's throttle does not hold back another.
func TestGateIsPerTenant(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			respond(429, ``, "Retry-After", "60")(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"items":[]}`)
	})
	gate := m365.NewGate(nil)
	c := newClient(t, srv, func(o *licensing.Options) { o.Gate = gate })
	cred := &staticCred{}
	if err := setCopilot(context.Background(), c, cred); m365.KindOf(err) != m365.Throttled {
		t.Fatalf("want Throttled, got %v", err)
	}
	if _, _, err := c.For("00000000-0000-0000-0000-000000000001", cred).ListProducts(context.Background()); err != nil {
		t.Errorf("another tenant was held back: %v", err)
	}
	if err := gate.Check(testTenant, strings.TrimPrefix(srv.URL, "https://")); m365.KindOf(err) != m365.Throttled {
		t.Errorf("the shared gate does not hold the throttled tenant: %v", err)
	}
}

// TestCorrelationIDPerCall checks that each call carries a fresh id, so two
// calls are never confused in a support case.
func TestCorrelationIDPerCall(t *testing.T) {
	var ids []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		ids = append(ids, r.Header.Get("x-ms-correlation-id"))
		_, _ = io.WriteString(w, `{"items":[]}`)
	})
	c := newClient(t, srv, nil)
	for range 2 {
		if _, _, err := c.For(testTenant, &staticCred{}).ListProducts(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] || ids[0] == "" {
		t.Errorf("want two different correlation ids, got %q", ids)
	}
}
