package m365

// The one request pipeline under every Microsoft client: licensing, Graph
// (below kiota's middlewares) and Entra (below azidentity and MSAL).

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxResponseBytes caps the body of every answer from a Microsoft endpoint,
// success or error. A tenant's product list or a Graph page is a few hundred
// KiB at most; anything larger is not an answer worth holding in memory.
const MaxResponseBytes = 8 << 20

// Reasons of the errors the pipeline makes itself.
const (
	reasonTooLarge      = "the answer is larger than 8 MiB"
	reasonRedirectNoLoc = "redirect without a usable Location; not followed"
)

// Transport returns the RoundTripper every request of tenant to a Microsoft
// endpoint goes through, outermost first:
//
//   - the guard: a 3xx answer becomes a Redirected *Error and is never
//     followed (no token, credential or body goes to its Location), and every
//     body is capped at MaxResponseBytes (an InvalidResponse *Error beyond);
//   - the gate (when gate is not nil): no request leaves before an earlier
//     Retry-After for (tenant, host) has passed; a 429 or 503 records one;
//   - base (nil: http.DefaultTransport), the shared transport: trust store and
//     connection pool. A RoundTripper that must see every request that leaves
//     (outbound metrics) wraps base: it sits right under the gate, sees each
//     answer as it came (3xx included) and never a request the gate held.
func Transport(tenant string, gate *Gate, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if gate != nil {
		base = gate.Transport(tenant, base)
	}
	return &guard{base: base}
}

// TenantClient returns a copy of hc (nil: a zero client) for tenant's
// requests: its transport is Transport(tenant, gate, hc.Transport) and it
// never follows a redirect.
func TenantClient(hc *http.Client, tenant string, gate *Gate) *http.Client {
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.Transport = Transport(tenant, gate, c.Transport)
	c.CheckRedirect = NoRedirects
	return &c
}

// NoRedirects is an http.Client CheckRedirect that hands a 3xx back to the
// caller instead of following it.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// guard refuses redirects and caps bodies (see Transport).
type guard struct{ base http.RoundTripper }

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		_ = resp.Body.Close()
		return nil, redirectError(req, resp)
	}
	if resp.ContentLength > MaxResponseBytes {
		_ = resp.Body.Close()
		return nil, tooLarge(resp.StatusCode)
	}
	resp.Body = &cappedBody{rc: resp.Body, left: MaxResponseBytes, status: resp.StatusCode}
	return resp, nil
}

// redirectError names the status and the origin of the Location (scheme and
// host only: its path and query may carry anything).
func redirectError(req *http.Request, resp *http.Response) *Error {
	e := &Error{Kind: Redirected, StatusCode: resp.StatusCode, Reason: reasonRedirectNoLoc}
	loc, err := req.URL.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host == "" || !printableHost(loc.Host) || !printableHost(loc.Scheme) {
		return e
	}
	e.Reason = fmt.Sprintf("redirect to %s://%s; not followed", strings.ToLower(loc.Scheme), loc.Host)
	return e
}

// printableHost accepts what a host[:port] (or a scheme) is made of, up to a
// DNS name's length plus a port.
func printableHost(s string) bool {
	if len(s) > 261 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]_+", c) >= 0) {
			return false
		}
	}
	return true
}

func tooLarge(status int) *Error {
	return &Error{Kind: InvalidResponse, StatusCode: status, Reason: reasonTooLarge}
}

// cappedBody reads at most left bytes of rc; one byte more is an error.
type cappedBody struct {
	rc     io.ReadCloser
	left   int64
	status int
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var probe [1]byte
		n, err := b.rc.Read(probe[:])
		if n > 0 {
			return 0, tooLarge(b.status)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }
