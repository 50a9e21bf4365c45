package m365

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// Planted secrets: what a proxy could echo back in an error page.
const (
	plantedToken  = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJl"
	plantedSecret = "Zx8Q~s3cr3t.Value_from-the~Secret"
)

// echoPage is a proxy error page that echoes the request's headers and form.
func echoPage() string {
	return "<html><body><h1>502 Bad Gateway</h1><pre>\nAuthorization: Bearer " + plantedToken +
		"\nclient_secret=" + url.QueryEscape(plantedSecret) + "&client_id=x\n" + plantedSecret + "</pre></body></html>"
}

// leakRequest is a request as the clients send it: with the bearer token.
func leakRequest() *http.Request {
	req := httptest.NewRequest(http.MethodGet, "https://licensing.example/v1.0/policies", nil)
	req.Header.Set("Authorization", "Bearer "+plantedToken)
	return req
}

func assertNoLeak(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{plantedToken, plantedSecret, url.QueryEscape(plantedSecret), "c2lnbmF0dXJl"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s leaks %q: %s", what, secret, s)
		}
	}
}

// TestErrorBodiesNeverLeak: an error body that echoes the bearer token or the
// client secret (a proxy page, or JSON whose message quotes them) never
// brings them into the error, whose code and reason stay bounded.
func TestErrorBodiesNeverLeak(t *testing.T) {
	cases := map[string]struct {
		contentType, body string
	}{
		"HTML echo page":              {"text/html", echoPage()},
		"HTML echo page, no type":     {"", echoPage()},
		"licensing JSON quoting them": {"application/json", fmt.Sprintf(`{"errorCode":"%s","reason":"Authorization: Bearer %s; secret %s"}`, plantedToken, plantedToken, plantedSecret)},
		"Graph JSON quoting them":     {"application/json", fmt.Sprintf(`{"error":{"code":"x","message":"token %s and %s"}}`, plantedToken, plantedSecret)},
		"Entra JSON quoting them":     {"application/json", fmt.Sprintf(`{"error":"invalid_client","error_description":"AADSTS7000215: client_secret=%s bearer %s"}`, url.QueryEscape(plantedSecret), plantedToken)},
		"another JWT":                 {"application/json", `{"errorCode":"x","reason":"saw eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}`},
		"a very long message":         {"application/json", `{"errorCode":"x","reason":"` + strings.Repeat("ab", 10000) + `"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 502, Header: http.Header{}, Request: leakRequest()}
			if tc.contentType != "" {
				resp.Header.Set("Content-Type", tc.contentType)
			}
			e := FromResponse("op", resp, []byte(tc.body), t0, plantedSecret)
			assertNoLeak(t, "the error", e.Error())
			if n := utf8.RuneCountInString(e.Reason); n > MaxReasonLength {
				t.Errorf("reason has %d runes, want at most %d", n, MaxReasonLength)
			}
			if n := len(e.Code); n > MaxCodeLength {
				t.Errorf("code has %d bytes, want at most %d", n, MaxCodeLength)
			}
		})
	}
}

// TestCleanTextRemovesCredentialShapes: credentials the controller never sent
// (so no secret to match) are still removed by their shape, whatever their
// case, while text without one comes back as it was.
func TestCleanTextRemovesCredentialShapes(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"bearer header":  {"proxy saw Authorization: BEARER abc.def-123 here", "proxy saw Authorization: Bearer " + Redacted + " here"},
		"form field":     {"body was grant_type=x&Refresh_Token=0.AX4A-secret&scope=y", "body was grant_type=x&Refresh_Token=" + Redacted + "&scope=y"},
		"JWT":            {"saw eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln", "saw " + Redacted},
		"a product name": {"Microsoft 365 Copilot", "Microsoft 365 Copilot"},
		"an equals sign": {"error code = 42", "error code = 42"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := CleanText(tc.in, 200); got != tc.want {
				t.Errorf("CleanText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestDescribeErrorBodyKeepsMicrosoftsWords(t *testing.T) {
	cases := map[string]struct {
		body, code, reason string
	}{
		"licensing": {`{"errorCode":"BadRequest","reason":"Invalid scope."}`, "BadRequest", "Invalid scope."},
		"Graph":     {`{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}`, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."},
		"Entra keeps the AADSTS code": {`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}`,
			"invalid_client", "AADSTS7000215: Invalid client secret provided."},
		"empty body": {``, "", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, reason := DescribeErrorBody([]byte(tc.body), "application/json")
			if code != tc.code || reason != tc.reason {
				t.Errorf("got %q, %q; want %q, %q", code, reason, tc.code, tc.reason)
			}
		})
	}
}
