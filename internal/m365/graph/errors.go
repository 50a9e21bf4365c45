package graph

import (
	"context"
	"errors"
	"net/http"
	"time"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Graph's response headers that identify a request for Microsoft support.
const (
	headerRequestID       = "request-id"
	headerClientRequestID = "client-request-id"
)

// classify turns the error of a call into the *m365.Error the reconciler acts
// on. Token failures come first (no request left); then what the recorder saw
// on the wire: a non-2xx answer is mapped like every Microsoft answer
// (m365.FromResponse: 429 Throttled with Retry-After, 401, 403 with Graph's
// code and message, 404, 5xx Transient), a transport error or the gate's
// refusal through m365.FromTransport. kiota's own error types are only a
// fallback.
func (c *Client) classify(ctx context.Context, op, tenantID string, err error, rec *recorder) error {
	var te *tokenError
	if errors.As(err, &te) {
		return tokenFailure(ctx, op, te)
	}
	resp, body, terr := rec.last()
	switch {
	case resp != nil:
		return withRequestID(m365.FromResponse(op, resp, body, c.now()), resp)
	case terr != nil:
		return m365.FromTransport(op, terr)
	}
	if _, ok := m365.AsError(err); ok {
		return m365.FromTransport(op, err)
	}
	if e := c.fromAPIError(op, tenantID, err); e != nil {
		return e
	}
	if ctx.Err() != nil {
		return m365.FromTransport(op, ctx.Err())
	}
	if rec.answeredOK() {
		return &m365.Error{Op: op, Kind: m365.InvalidResponse, Reason: "a 2xx answer that is not the expected JSON", Err: err}
	}
	return &m365.Error{Op: op, Kind: m365.Transient, Reason: "unreadable response", Err: err}
}

// tokenFailure maps a failure to get a token: an *m365.Error (from the
// credentials package) passes through, a timeout is Transient, anything else
// means the credential was refused (Unauthorized).
func tokenFailure(ctx context.Context, op string, te *tokenError) error {
	if e, ok := m365.AsError(te.err); ok {
		if e.Op != "" {
			return e
		}
		cp := *e
		cp.Op = op
		return &cp
	}
	if ctx.Err() != nil || errors.Is(te.err, context.DeadlineExceeded) || errors.Is(te.err, context.Canceled) {
		return m365.FromTransport(op, te.err)
	}
	return &m365.Error{Op: op, Kind: m365.Unauthorized, Reason: "token request failed", Err: te.err}
}

// withRequestID fills CorrelationID with Graph's request-id (or the
// client-request-id the SDK sent), which Microsoft support asks for. A
// request-id that is not a plain ID (a proxy may send anything) is ignored.
func withRequestID(e *m365.Error, resp *http.Response) *m365.Error {
	if e.CorrelationID != "" {
		return e
	}
	if id := resp.Header.Get(headerRequestID); plainID(id) {
		e.CorrelationID = id
	}
	if e.CorrelationID == "" && resp.Request != nil {
		e.CorrelationID = resp.Request.Header.Get(headerClientRequestID)
	}
	return e
}

// plainID accepts a GUID-like request ID: letters, digits and '-', at most
// m365.MaxIDLength.
func plainID(s string) bool {
	if s == "" || len(s) > m365.MaxIDLength {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// fromAPIError maps kiota's error for a failed response (an *ODataError, or
// an ApiError when the body could not be parsed) when the recorder has
// nothing. It returns nil for any other error. A 429 without a readable
// Retry-After takes the wait the gate recorded.
func (c *Client) fromAPIError(op, tenantID string, err error) *m365.Error {
	var api abs.ApiErrorable
	if !errors.As(err, &api) || api.GetStatusCode() == 0 {
		return nil
	}
	resp := &http.Response{StatusCode: api.GetStatusCode(), Header: toHTTPHeader(api.GetResponseHeaders()), Request: &http.Request{Header: http.Header{}}}
	e := withRequestID(m365.FromResponse(op, resp, nil, c.now()), resp)
	e.Code, e.Reason = odataCode(err)
	if e.Kind == m365.Throttled && resp.Header.Get("Retry-After") == "" {
		e.RetryAfter = c.gateWait(tenantID, e.RetryAfter)
	}
	return e
}

// gateWait returns how long the gate still holds tenant's requests to Graph,
// or def when it holds none.
func (c *Client) gateWait(tenantID string, def time.Duration) time.Duration {
	if d := m365.RetryAfterOf(c.gate.Check(tenantID, c.origin)); d > 0 {
		return d
	}
	return def
}

// odataCode returns Graph's error code and message from an *ODataError,
// cleaned and bounded like every code and message copied from an answer.
func odataCode(err error) (code, message string) {
	var od *odataerrors.ODataError
	if !errors.As(err, &od) {
		return "", ""
	}
	me := od.GetErrorEscaped()
	if me == nil {
		return "", ""
	}
	return m365.CleanError(deref(me.GetCode()), deref(me.GetMessage()))
}

// toHTTPHeader copies kiota's response headers.
func toHTTPHeader(h *abs.ResponseHeaders) http.Header {
	out := http.Header{}
	if h == nil {
		return out
	}
	for _, k := range h.ListKeys() {
		for _, v := range h.Get(k) {
			out.Add(k, v)
		}
	}
	return out
}
