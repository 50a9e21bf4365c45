package graph_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// sentBody is a write as the fake Graph received it.
type sentBody struct {
	Path, ContentEncoding string
	Body                  []byte
}

// recordWrites answers every request with status and records the bodies of
// the writes.
func recordWrites(status int) (http.HandlerFunc, func() []sentBody) {
	var (
		mu   sync.Mutex
		seen []sentBody
	)
	h := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, sentBody{r.URL.Path, r.Header.Get("Content-Encoding"), b})
		mu.Unlock()
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, graphError("UnsupportedMediaType", "unsupported"))
	}
	return h, func() []sentBody {
		mu.Lock()
		defer mu.Unlock()
		return append([]sentBody(nil), seen...)
	}
}

// keysOf returns the keys of the JSON object b at path (nested object
// names), failing the test if b is not plain JSON.
func keysOf(t *testing.T, b []byte, path ...string) []string {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatalf("the body is not plain JSON (%v): %q", err, b)
	}
	for _, p := range path {
		obj, _ = obj[p].(map[string]any)
	}
	var out []string
	for k := range obj {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestWritesArePlainJSONOfOnlyTheGivenFields: Graph documents a PATCH body
// as the properties to change, as JSON. Neither write may be compressed (the
// SDK's compression handler would gzip it, and resend it uncompressed on a
// 415 on its own), and the authorization policy's may not carry the model's
// @odata.type.
func TestWritesArePlainJSONOfOnlyTheGivenFields(t *testing.T) {
	cases := map[string]struct {
		write func(graph.Tenant) error
		path  string
		in    []string // the object holding the fields
		want  []string
	}{
		"authorization policy": {
			write: func(api graph.Tenant) error {
				return api.UpdateAuthorizationPolicy(context.Background(), graph.Settings{graph.FieldAllowedToSignUpEmailBasedSubscriptions: false})
			},
			path: "/v1.0/policies/authorizationPolicy",
			want: []string{graph.FieldAllowedToSignUpEmailBasedSubscriptions},
		},
		"apps and services": {
			write: func(api graph.Tenant) error {
				return api.UpdateAppsAndServices(context.Background(), graph.Settings{graph.FieldIsOfficeStoreEnabled: false})
			},
			path: "/beta/admin/appsAndServices",
			in:   []string{"settings"},
			want: []string{graph.FieldIsOfficeStoreEnabled},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, status := range []int{http.StatusNoContent, http.StatusUnsupportedMediaType} {
				f := newFakeGraph(t)
				h, writes := recordWrites(status)
				f.setFault(h)
				err := tc.write(newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken}))
				if (err == nil) != (status == http.StatusNoContent) {
					t.Errorf("HTTP %d: error %v", status, err)
				}
				got := writes()
				if len(got) != 1 {
					t.Fatalf("HTTP %d: Graph saw %d writes, want exactly 1 (no resend)", status, len(got))
				}
				if got[0].Path != tc.path || got[0].ContentEncoding != "" {
					t.Errorf("HTTP %d: PATCH %s with Content-Encoding %q, want %s uncompressed", status, got[0].Path, got[0].ContentEncoding, tc.path)
				}
				if tc.in != nil {
					if diff := cmp.Diff(tc.in, keysOf(t, got[0].Body)); diff != "" {
						t.Errorf("body's top-level fields (-want +got):\n%s", diff)
					}
				}
				if diff := cmp.Diff(tc.want, keysOf(t, got[0].Body, tc.in...)); diff != "" {
					t.Errorf("HTTP %d: body fields (-want +got):\n%s", status, diff)
				}
			}
		})
	}
}

// TestUnusableAnswersAreInvalid: a 2xx that is not the expected JSON, or a
// collection without its value list, is InvalidResponse (retried with
// backoff, never read as an empty list); "value": [] is an empty list.
func TestUnusableAnswersAreInvalid(t *testing.T) {
	raw := func(contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			_, _ = io.WriteString(w, body)
		}
	}
	cases := map[string]http.HandlerFunc{
		"no value":           raw("application/json", `{}`),
		"null value":         raw("application/json", `{"value":null}`),
		"value not a list":   raw("application/json", `{"value":"x"}`),
		"cut JSON":           raw("application/json", `{"value":[{"id":`),
		"an error in a 200":  raw("application/json", `{"error":{"code":"x","message":"y"}}`),
		"HTML in a 200":      raw("text/html", `<html>maintenance</html>`),
		"nothing in a 200":   raw("application/json", ``),
		"a later page empty": nil, // set below: first page fine, next page {}
	}
	for name, fault := range cases {
		for op, call := range map[string]call{graph.OpListSubscriptions: listSubscriptions, graph.OpListSubscribedSkus: listSkus} {
			t.Run(name+"/"+op, func(t *testing.T) {
				f := newFakeGraph(t)
				if fault == nil {
					fault = func(w http.ResponseWriter, r *http.Request) {
						if r.URL.Query().Get("$skiptoken") == "" {
							writeJSON(w, 200, map[string]any{"value": []any{}, "@odata.nextLink": "https://" + r.Host + r.URL.Path + "?$skiptoken=2"})
							return
						}
						writeJSON(w, 200, map[string]any{})
					}
				}
				f.setFault(fault)
				err := call(context.Background(), newClient(t, f, 0), &fakeCredential{token: testToken})
				if err == nil {
					t.Fatal("an unusable answer was read as a list")
				}
				if got := failureOf(t, err); got.Kind != m365.InvalidResponse || got.Op != op {
					t.Errorf("want InvalidResponse from %q, got %+v", op, got)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error message leaks the token: %v", err)
				}
			})
		}
	}
	t.Run("empty value list", func(t *testing.T) {
		f := newFakeGraph(t)
		f.setFault(answer(200, nil, map[string]any{"value": []any{}}))
		subs, _, err := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken}).ListSubscriptions(context.Background())
		if err != nil || len(subs) != 0 {
			t.Errorf(`"value": [] = %v, %v; want an empty list`, subs, err)
		}
	})
	t.Run("authorization policy", func(t *testing.T) {
		f := newFakeGraph(t)
		f.setFault(raw("application/json", `{"allowedToSignUpEmailBasedSubscriptions":`))
		_, err := newClient(t, f, 0).For(testTenant, &fakeCredential{token: testToken}).GetAuthorizationPolicy(context.Background())
		if got := failureOf(t, err); got.Kind != m365.InvalidResponse || got.Op != graph.OpGetAuthorizationPolicy {
			t.Errorf("want InvalidResponse from %q, got %+v", graph.OpGetAuthorizationPolicy, got)
		}
	})
}

// TestClaimsChallengeIsAnsweredOnce: Graph's 401 with a claims challenge
// (WWW-Authenticate: Bearer ..., claims="<base64>") is answered as Microsoft
// documents: one new token request carrying the decoded claims, one retry
// with that token. Tokens are requested without CAE (the client does not
// declare the CP1 capability, so Entra issues ordinary lifetimes).
func TestClaimsChallengeIsAnsweredOnce(t *testing.T) {
	const claims = `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	f := newFakeGraph(t)
	var calls int
	f.setFault(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(claims))+`"`)
			writeJSON(w, http.StatusUnauthorized, graphError("InvalidAuthenticationToken", "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": wireSubscriptions()})
	})
	cred := &fakeCredential{token: testToken}
	subs, _, err := newClient(t, f, 0).For(testTenant, cred).ListSubscriptions(context.Background())
	if err != nil || len(subs) != len(wireSubscriptions()) {
		t.Fatalf("ListSubscriptions after a claims challenge = %d subscriptions, %v", len(subs), err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("Graph saw %d requests, want the call and one retry", n)
	}
	reqs := cred.requests()
	if len(reqs) != 2 || reqs[0].Claims != "" || reqs[1].Claims != claims {
		t.Errorf("token requests %+v: want one without claims, then one with %s", reqs, claims)
	}
	for _, o := range reqs {
		if o.EnableCAE {
			t.Errorf("a token was asked for with CAE (CP1) declared: %+v", o)
		}
	}
}
