package m365

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestFromResponse(t *testing.T) {
	cases := map[string]struct {
		status int
		header http.Header
		body   string
		want   Error
	}{
		"429 with seconds": {429, http.Header{"Retry-After": {"7"}}, `{"errorCode":"TooMany","reason":"slow down"}`,
			Error{Kind: Throttled, StatusCode: 429, Code: "TooMany", Reason: "slow down", RetryAfter: 7 * time.Second}},
		"429 without Retry-After waits the default": {429, nil, ``,
			Error{Kind: Throttled, StatusCode: 429, RetryAfter: DefaultRetryAfter}},
		"503 with Retry-After is throttling": {503, http.Header{"Retry-After": {"3"}}, ``,
			Error{Kind: Throttled, StatusCode: 503, RetryAfter: 3 * time.Second}},
		"503 without Retry-After is transient": {503, nil, ``, Error{Kind: Transient, StatusCode: 503}},
		"503 with an unreadable Retry-After still waits": {503, http.Header{"Retry-After": {"later"}}, ``,
			Error{Kind: Throttled, StatusCode: 503, RetryAfter: DefaultRetryAfter}},
		"licensing 404 unknown product": {404, nil, `{"errorCode":"Unknown","reason":"GetProductDetailsByProductIdAsync failed"}`,
			Error{Kind: NotFound, StatusCode: 404, Code: "Unknown", Reason: "GetProductDetailsByProductIdAsync failed"}},
		"graph 403": {403, nil, `{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}`,
			Error{Kind: Forbidden, StatusCode: 403, Code: "Authorization_RequestDenied", Reason: "Insufficient privileges"}},
		"entra 401": {401, nil, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`,
			Error{Kind: Unauthorized, StatusCode: 401, Code: "invalid_client", Reason: "AADSTS7000215: Invalid client secret provided."}},
		"400 bad request": {400, nil, `{"errorCode":"BadRequest","reason":"Invalid scope."}`,
			Error{Kind: BadRequest, StatusCode: 400, Code: "BadRequest", Reason: "Invalid scope."}},
		"a proxy's HTML page is described, never quoted": {502, http.Header{"Content-Type": {"text/html; charset=utf-8"}}, `<html><body>Bad gateway</body></html>`,
			Error{Kind: Transient, StatusCode: 502, Reason: "non-JSON answer (content-type text/html, 37 bytes)"}},
		"plain text without a content type": {500, nil, `oops`,
			Error{Kind: Transient, StatusCode: 500, Reason: "non-JSON answer (content-type none, 4 bytes)"}},
		"JSON that is no Microsoft error is described": {500, http.Header{"Content-Type": {"application/json"}}, `{"detail":"x"}`,
			Error{Kind: Transient, StatusCode: 500, Reason: "JSON answer without a Microsoft error (content-type application/json, 14 bytes)"}},
		"control characters become spaces": {400, nil, "{\"errorCode\":\"BadRequest\",\"reason\":\"line one\\r\\nline\\u0000two\\u202e\"}",
			Error{Kind: BadRequest, StatusCode: 400, Code: "BadRequest", Reason: "line one  line two"}},
		"a code that is not a code is dropped": {400, nil, `{"errorCode":"<script>","reason":"x"}`,
			Error{Kind: BadRequest, StatusCode: 400, Reason: "x"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "https://x/v1.0/policies", nil)
			resp := &http.Response{StatusCode: tc.status, Header: tc.header, Request: req}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			got := FromResponse("op", resp, []byte(tc.body), t0)
			tc.want.Op = "op"
			if diff := cmp.Diff(tc.want, *got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestGateHoldsRequestsUntilRetryAfter(t *testing.T) {
	now := t0
	g := NewGate(func() time.Time { return now })
	sent := 0
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		h := http.Header{}
		if sent == 1 {
			h.Set("Retry-After", "30")
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(nil)), Request: r}, nil
	})
	c := &http.Client{Transport: g.Transport("tenant-a", base)}
	other := &http.Client{Transport: g.Transport("tenant-b", base)}
	get := func(c *http.Client) error {
		resp, err := c.Get("https://licensing.example/v1.0/x")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	if err := get(c); err != nil || sent != 1 {
		t.Fatalf("first request: err %v, sent %d", err, sent)
	}
	now = now.Add(10 * time.Second)
	err := get(c)
	if KindOf(err) != Throttled || RetryAfterOf(err) != 20*time.Second || sent != 1 {
		t.Fatalf("within the window: err %v (retry after %v), sent %d; want Throttled 20s and nothing sent", err, RetryAfterOf(err), sent)
	}
	if err := get(other); err != nil || sent != 2 {
		t.Fatalf("another tenant must not be held: err %v, sent %d", err, sent)
	}
	g.Defer("tenant-a", "licensing.example", time.Second) // a shorter wait never shortens a longer one
	now = now.Add(20 * time.Second)
	if err := get(c); err != nil || sent != 3 {
		t.Fatalf("after the window: err %v, sent %d", err, sent)
	}
}

func TestValidateOrigin(t *testing.T) {
	cases := map[string]struct {
		in string
		ok bool
	}{
		"https origin":        {"https://licensing.m365.microsoft.com", true},
		"with port and slash": {"https://127.0.0.1:8443/", true},
		"plain http":          {"http://127.0.0.1:8443", false},
		"with a path":         {"https://graph.microsoft.com/v1.0", false},
		"with credentials":    {"https://user:pw@host", false},
		"not a URL":           {"::", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := ValidateOrigin(tc.in); (err == nil) != tc.ok {
				t.Errorf("ValidateOrigin(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

// TestSameOrigin: a request may go to the origin only; the host compares
// case-insensitively, https' default port may be left out, and user info is
// never the origin's.
func TestSameOrigin(t *testing.T) {
	cases := map[string]struct {
		authority, target string
		want              bool
	}{
		"same":                    {"https://login.microsoftonline.com", "https://login.microsoftonline.com/t/oauth2/v2.0/token", true},
		"host case":               {"https://login.microsoftonline.com", "https://LOGIN.MicrosoftOnline.com/t", true},
		"explicit default port":   {"https://login.microsoftonline.com", "https://login.microsoftonline.com:443/t", true},
		"authority with :443":     {"https://login.microsoftonline.com:443", "https://login.microsoftonline.com/t", true},
		"same IP and port":        {"https://127.0.0.1:8443", "https://127.0.0.1:8443/t", true},
		"other host":              {"https://login.microsoftonline.com", "https://other-host/t", false},
		"host with a suffix":      {"https://login.microsoftonline.com", "https://login.microsoftonline.com.evil.example/t", false},
		"other port":              {"https://127.0.0.1:8443", "https://127.0.0.1:8444/t", false},
		"port left out":           {"https://127.0.0.1:8443", "https://127.0.0.1/t", false},
		"plain http, same host":   {"https://login.microsoftonline.com", "http://login.microsoftonline.com/t", false},
		"http on the https port":  {"https://login.microsoftonline.com", "http://login.microsoftonline.com:443/t", false},
		"user info is not a host": {"https://login.microsoftonline.com", "https://login.microsoftonline.com@other-host/t", false},
		"user info on the host":   {"https://login.microsoftonline.com", "https://user@login.microsoftonline.com/t", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := url.Parse(tc.authority)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := SameOrigin(a, u); got != tc.want {
				t.Errorf("sameOrigin(%s, %s) = %v, want %v", tc.authority, tc.target, got, tc.want)
			}
		})
	}
}
