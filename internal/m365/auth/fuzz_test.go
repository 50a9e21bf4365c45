package auth

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Credentials a token request carries, planted in every fuzzed answer's call.
const (
	fuzzAssertion    = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly9BenVyZUFEVG9rZW5FeGNoYW5nZSJ9.c2lnbmF0dXJlLXZhbHVl"
	fuzzRefreshToken = "0.AXoA-refresh-token-value_never.shown"
)

// FuzzEntraErrorBody: whatever Entra (or a proxy in front of it) answers, the
// token error never panics, never contains the client secret, the assertion
// or the refresh token (as sent or form-encoded), and is bounded.
func FuzzEntraErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret.\r\nTrace ID: 1"}`,
		`{"error":"invalid_grant","error_description":"AADSTS70000: The provided value for refresh_token ` + fuzzRefreshToken + ` is not valid."}`,
		`{"error":"invalid_request","error_description":"AADSTS50027: JWT ` + fuzzAssertion + ` is invalid."}`,
		`<html>client_secret=` + url.QueryEscape(testSecret) + `&client_assertion=` + fuzzAssertion + `</html>`,
		`{"error":"` + testSecret + `","error_description":"` + url.PathEscape(testSecret) + `"}`,
		`{"error":{"code":"x","message":"` + testSecret + `"}}`,
	} {
		f.Add([]byte(s), "application/json", 400)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string, status int) {
		if status < 400 || status > 599 {
			status = 400 + (status%100+100)%100
		}
		_, sink := withSink(context.Background(), testSecret, fuzzAssertion, fuzzRefreshToken)
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}}}
		e := responseError(resp, body, sink, time.Unix(0, 0))
		msg := e.Error()
		for _, secret := range []string{testSecret, fuzzAssertion, fuzzRefreshToken, url.QueryEscape(testSecret)} {
			if strings.Contains(msg, secret) {
				t.Fatalf("the error leaks %q: %s", secret, msg)
			}
		}
		if utf8.RuneCountInString(e.Reason) > m365.MaxReasonLength || len(e.Code) > m365.MaxCodeLength {
			t.Fatalf("unbounded: code %d bytes, reason %d runes", len(e.Code), utf8.RuneCountInString(e.Reason))
		}
	})
}
