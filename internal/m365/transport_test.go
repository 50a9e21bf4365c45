package m365

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/m365test"
)

// TestTenantClientNeverFollowsRedirects: whatever 3xx a Microsoft endpoint
// answers, nothing reaches the Location, and the caller gets a Redirected
// error naming the status and the Location's origin but not its path or query.
func TestTenantClientNeverFollowsRedirects(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			elsewhere := m365test.NewTarget(t, false)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/steal?token=abc", status)
			}))
			t.Cleanup(srv.Close)
			c := TenantClient(srv.Client(), "tenant", NewGate(nil))
			req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v1.0/x", strings.NewReader(`{"policyValue":"Disabled"}`))
			req.Header.Set("Authorization", "Bearer secret-token")
			resp, err := c.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				t.Fatalf("a %d came back as a response (HTTP %d), want a Redirected error", status, resp.StatusCode)
			}
			e, ok := AsError(err)
			if !ok || e.Kind != Redirected || e.StatusCode != status {
				t.Fatalf("want a Redirected *Error with HTTP %d, got %v", status, err)
			}
			if !strings.Contains(e.Reason, strings.TrimPrefix(elsewhere.URL, "http://")) || strings.Contains(err.Error(), "steal") || strings.Contains(err.Error(), "token=") {
				t.Errorf("reason %q should name the Location's host, never its path or query", e.Reason)
			}
			elsewhere.CheckUntouched(t)
		})
	}
}

// TestTenantClientCapsBodies: an answer beyond MaxResponseBytes fails with an
// InvalidResponse error, whether it announces its length or streams.
func TestTenantClientCapsBodies(t *testing.T) {
	big := strings.Repeat("x", MaxResponseBytes+1)
	cases := map[string]http.HandlerFunc{
		"with Content-Length": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) },
		"chunked": func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < len(big); i += 1 << 20 {
				_, _ = io.WriteString(w, big[i:min(i+1<<20, len(big))])
				w.(http.Flusher).Flush()
			}
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewTLSServer(h)
			t.Cleanup(srv.Close)
			c := TenantClient(srv.Client(), "tenant", nil)
			resp, err := c.Get(srv.URL)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			if KindOf(err) != InvalidResponse {
				t.Fatalf("want InvalidResponse, got %v", err)
			}
		})
	}
	t.Run("at the cap", func(t *testing.T) {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, big[:MaxResponseBytes])
		}))
		t.Cleanup(srv.Close)
		resp, err := TenantClient(srv.Client(), "tenant", nil).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if b, err := io.ReadAll(resp.Body); err != nil || len(b) != MaxResponseBytes {
			t.Errorf("a body of exactly MaxResponseBytes: read %d bytes, %v", len(b), err)
		}
	})
}

// TestNewHTTPClientDoesNotFollowRedirects: the shared base client hands a 3xx
// back instead of following it, for any caller that uses it directly.
func TestNewHTTPClientDoesNotFollowRedirects(t *testing.T) {
	elsewhere := m365test.NewTarget(t, false)
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusFound))
	t.Cleanup(srv.Close)
	c, err := NewHTTPClient("")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("got HTTP %d, want the 302 itself", resp.StatusCode)
	}
	elsewhere.CheckUntouched(t)
}
