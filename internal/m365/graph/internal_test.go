package graph

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	abs "github.com/microsoft/kiota-abstractions-go"
	khttp "github.com/microsoft/kiota-http-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// odataError builds the error kiota returns for a Graph error body.
func odataError(status int, code, message string, headers map[string]string) error {
	me := odataerrors.NewMainError()
	me.SetCode(&code)
	me.SetMessage(&message)
	e := odataerrors.NewODataError()
	e.SetErrorEscaped(me)
	e.SetStatusCode(status)
	h := abs.NewResponseHeaders()
	for k, v := range headers {
		h.Add(k, v)
	}
	e.SetResponseHeaders(h)
	return e
}

// TestFromAPIError covers the fallback used when the recorder saw nothing:
// kiota's own error types still give the right kind, code and wait.
func TestFromAPIError(t *testing.T) {
	const tenant = "t1"
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	type result struct {
		Kind       m365.Kind
		StatusCode int
		Code       string
		Reason     string
		RetryAfter time.Duration
	}
	cases := map[string]struct {
		reason    string
		err       error
		gateDelay time.Duration
		want      *result
	}{
		"ODataError 403": {
			reason: "Graph's code and message are kept",
			err:    odataError(403, "Authorization_RequestDenied", "Insufficient privileges", nil),
			want:   &result{Kind: m365.Forbidden, StatusCode: 403, Code: "Authorization_RequestDenied", Reason: "Insufficient privileges"},
		},
		"ODataError 429 with Retry-After": {
			reason: "the header kiota kept gives the wait",
			err:    odataError(429, "TooManyRequests", "slow down", map[string]string{"Retry-After": "12"}),
			want:   &result{Kind: m365.Throttled, StatusCode: 429, Code: "TooManyRequests", Reason: "slow down", RetryAfter: 12 * time.Second},
		},
		"ApiError 429 without headers takes the gate's wait": {
			reason:    "the gate recorded the Retry-After even when kiota lost it",
			err:       &abs.ApiError{ResponseStatusCode: 429},
			gateDelay: 9 * time.Second,
			want:      &result{Kind: m365.Throttled, StatusCode: 429, RetryAfter: 9 * time.Second},
		},
		"ApiError 502": {
			reason: "an unparsable 5xx is still Transient",
			err:    &abs.ApiError{ResponseStatusCode: 502},
			want:   &result{Kind: m365.Transient, StatusCode: 502},
		},
		"ODataError quoting a token": {
			reason: "the SDK's parsed message is cleaned and bounded like any other",
			err:    odataError(401, "InvalidAuthenticationToken", "token eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln was\nrejected", nil),
			want:   &result{Kind: m365.Unauthorized, StatusCode: 401, Code: "InvalidAuthenticationToken", Reason: "token [REDACTED] was rejected"},
		},
		"not an API error": {
			reason: "other errors are left to the caller",
			err:    errors.New("boom"),
			want:   nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := &Client{host: "graph.example", origin: "graph.example:8443", gate: m365.NewGate(func() time.Time { return now }), now: func() time.Time { return now }}
			c.gate.Defer(tenant, c.origin, tc.gateDelay) // the gate keys by host:port, as req.URL.Host
			var got *result
			if e := c.fromAPIError("op", tenant, tc.err); e != nil {
				got = &result{e.Kind, e.StatusCode, e.Code, e.Reason, e.RetryAfter}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestMiddlewaresNeitherRetryNorRedirect: kiota's retry handler would resend
// throttled requests behind the gate's back; its redirect handler would
// follow a 3xx (a PUT turned into a GET, the token sent to another port of
// an allowed host).
func TestMiddlewaresNeitherRetryNorRedirect(t *testing.T) {
	for _, m := range middlewares() {
		switch m.(type) {
		case *khttp.RetryHandler, *khttp.RedirectHandler:
			t.Errorf("the pipeline holds %T", m)
		}
	}
}

// BenchmarkSession measures building the per-call pipeline (auth provider,
// middlewares, adapter): it decides that nothing is cached per tenant.
func BenchmarkSession(b *testing.B) {
	c, err := New(Options{Endpoint: "https://graph.example"})
	if err != nil {
		b.Fatal(err)
	}
	cred := tenantCredential{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.begin("tenant", cred); err != nil {
			b.Fatal(err)
		}
	}
}
