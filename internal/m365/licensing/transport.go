package licensing

// How one request reaches the policy API: token, the shared pipeline
// (not-before gate, no redirects, size-capped bodies: m365.TenantClient),
// per-call timeout and the mapping of every failure to an *m365.Error. The
// calls themselves are in api.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Reasons of errors the client makes itself. None of them quotes a token,
// a secret or the credential's own error text.
const (
	reasonNoToken       = "could not get a token for the licensing API"
	reasonTokenTimeout  = "timed out getting a token for the licensing API"
	reasonBadBody       = "the answer is not the expected JSON"
	reasonEmptyKey      = "no product ID or offer type given"
	reasonEmptyValue    = "no policy value given"
	reasonNoCredentials = "no credential given"
	reasonBuildRequest  = "building the request failed"
)

// callSpec describes one request: in is JSON-encoded as the body when not nil,
// decode receives the 2xx body when not nil.
type callSpec struct {
	tenantID string
	cred     azcore.TokenCredential
	op       string
	method   string
	path     string // already escaped
	query    url.Values
	in       any
	decode   func(body []byte) error
}

// call sends one request and decodes its answer. It gets a token, sends the
// request through the tenant's gate under the per-call timeout and turns every
// failure into an *m365.Error carrying the correlation id (a canceled ctx is
// returned unchanged).
func (c *Client) call(ctx context.Context, k callSpec) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cid := c.correlationID()
	token, err := c.token(ctx, k, cid)
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, k, token, cid)
	if err != nil {
		return withCorrelation(&m365.Error{Kind: m365.BadRequest, Op: k.op, Reason: reasonBuildRequest, Err: err}, cid)
	}
	return withCorrelation(c.send(req, k), cid)
}

// token gets an access token for the licensing API in k.tenantID. An error
// that is already an *m365.Error passes through unchanged (it may be shared
// by a single-flight token cache, so it is not touched); when ctx was
// canceled its error is returned as is, and when the per-call deadline passed
// the error is Transient; anything else becomes Unauthorized with a fixed
// message, so nothing the credential says (which might quote a secret)
// reaches logs or status.
func (c *Client) token(ctx context.Context, k callSpec, cid string) (string, error) {
	if k.cred == nil {
		return "", &m365.Error{Kind: m365.Unauthorized, Op: k.op, Reason: reasonNoCredentials, CorrelationID: cid}
	}
	tok, err := k.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{m365.LicensingScope}, TenantID: k.tenantID})
	switch {
	case err == nil:
		return tok.Token, nil
	case isM365Error(err):
		return "", err
	case errors.Is(ctx.Err(), context.Canceled):
		return "", ctx.Err()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "", &m365.Error{Kind: m365.Transient, Op: k.op, Reason: reasonTokenTimeout, CorrelationID: cid}
	default:
		return "", &m365.Error{Kind: m365.Unauthorized, Op: k.op, Reason: reasonNoToken, CorrelationID: cid}
	}
}

func isM365Error(err error) bool {
	_, ok := m365.AsError(err)
	return ok
}

// newRequest builds the HTTP request of k with the headers every call carries.
func (c *Client) newRequest(ctx context.Context, k callSpec, token, cid string) (*http.Request, error) {
	target := c.origin + k.path
	if len(k.query) > 0 {
		target += "?" + k.query.Encode()
	}
	var body io.Reader
	if k.in != nil {
		b, err := json.Marshal(k.in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", contentTypeJSON)
	req.Header.Set(correlationHdr, cid)
	if body != nil {
		req.Header.Set("Content-Type", contentTypeJSON)
	}
	return req, nil
}

// send passes req through the tenant's pipeline (gate, no redirects, capped
// body), reads the answer and maps failures to *m365.Error.
func (c *Client) send(req *http.Request, k callSpec) error {
	resp, err := m365.TenantClient(c.httpClient, k.tenantID, c.gate).Do(req)
	if err != nil {
		return m365.FromTransport(k.op, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return m365.FromResponse(k.op, resp, body, c.now())
	}
	return decodeBody(k.op, resp, k.decode)
}

// decodeBody reads a 2xx answer (the pipeline caps it at
// m365.MaxResponseBytes) and hands it to decode (when not nil). A body that
// is too large or not the expected JSON is InvalidResponse: the request may
// succeed when sent again, and the reconciler backs off.
func decodeBody(op string, resp *http.Response, decode func([]byte) error) error {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return m365.FromTransport(op, err)
	}
	if decode == nil {
		return nil
	}
	if err := decode(b); err != nil {
		return &m365.Error{Kind: m365.InvalidResponse, Op: op, StatusCode: resp.StatusCode, Reason: reasonBadBody, Err: err}
	}
	return nil
}

// withCorrelation sets the correlation id on err when it is an *m365.Error
// that has none yet. Other errors (a canceled context) are returned as is.
func withCorrelation(err error, cid string) error {
	if e, ok := m365.AsError(err); ok && e.CorrelationID == "" {
		e.CorrelationID = cid
	}
	return err
}
