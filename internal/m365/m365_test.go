package m365

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	cases := map[string]struct {
		in   string
		want time.Duration
		ok   bool
	}{
		"seconds":               {"30", 30 * time.Second, true},
		"HTTP date in future":   {t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		"HTTP date in the past": {t0.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		"negative is invalid":   {"-1", 0, false},
		"garbage is invalid":    {"soon", 0, false},
		"empty is absent":       {"", 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tc.in, t0)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

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
