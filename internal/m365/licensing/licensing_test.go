package licensing_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

func TestNew(t *testing.T) {
	cases := map[string]struct {
		endpoint string
		wantErr  bool
	}{
		"origin":           {endpoint: "https://licensing.m365.microsoft.com"},
		"trailing slash":   {endpoint: "https://127.0.0.1:8443/"},
		"plain http":       {endpoint: "http://licensing.m365.microsoft.com", wantErr: true},
		"with path":        {endpoint: "https://licensing.m365.microsoft.com/v1.0", wantErr: true},
		"empty":            {endpoint: "", wantErr: true},
		"with query":       {endpoint: "https://licensing.m365.microsoft.com?x=1", wantErr: true},
		"with user info":   {endpoint: "https://u:p@licensing.m365.microsoft.com", wantErr: true},
		"not a url at all": {endpoint: "::", wantErr: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := licensing.New(licensing.Options{Endpoint: tc.endpoint})
			if (err != nil) != tc.wantErr {
				t.Errorf("New(%q): wantErr %v, got %v", tc.endpoint, tc.wantErr, err)
			}
		})
	}
}

// TestTrailingSlashEndpoint checks that an origin with a trailing slash
// still produces the documented path.
func TestTrailingSlashEndpoint(t *testing.T) {
	var path string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		_, _ = io.WriteString(w, `{"items":[]}`)
	})
	c := newClient(t, srv, func(o *licensing.Options) { o.Endpoint = srv.URL + "/" })
	if _, _, err := c.For(testTenant, &staticCred{}).ListProducts(context.Background()); err != nil {
		t.Fatal(err)
	}
	if path != "/v1.0/policies/AllowSelfServicePurchase/products" {
		t.Errorf("path %q", path)
	}
}
