package m365sim

import (
	"net/http"
	"net/url"
	"testing"
)

// TestListenersServeOnlyTheirService: each port is one Microsoft host. The
// licensing API's /v1.0/policies and Graph's /v1.0/policies/authorizationPolicy
// share a prefix and are told apart by the listener alone.
func TestListenersServeOnlyTheirService(t *testing.T) {
	f := newFixture(t, nil)
	e := f.sim.Endpoints()
	lic, graph := f.licensingToken(t), f.graphToken(t)
	cases := []struct {
		name, origin, path, token string
		status                    int
		body                      string // "licensing" or "graph" error style when not 200
	}{
		{"licensing products on the licensing host", e.Licensing, "/v1.0/policies/AllowSelfServicePurchase/products", lic, 200, ""},
		{"authorizationPolicy on the Graph host", e.Graph, pathAuthorizationPolicy, graph, 200, ""},
		{"authorizationPolicy on the licensing host", e.Licensing, pathAuthorizationPolicy, lic, 404, "licensing"},
		{"Graph subscriptions on the licensing host", e.Licensing, "/v1.0/directory/subscriptions", lic, 404, "licensing"},
		{"licensing products on the Graph host", e.Graph, "/v1.0/policies/AllowSelfServicePurchase/products", graph, 400, "graph"},
		{"a licensing token on the Graph host", e.Graph, pathAuthorizationPolicy, lic, 401, "graph"},
	}
	for _, tc := range cases {
		r := f.do(t, "GET", tc.origin+tc.path, tc.token, nil, nil)
		if r.status != tc.status {
			t.Errorf("%s: want %d, got %d %s", tc.name, tc.status, r.status, r.body)
			continue
		}
		m := r.json(t)
		switch tc.body {
		case "licensing":
			if m["errorCode"] == nil {
				t.Errorf("%s: want the licensing error body, got %s", tc.name, r.body)
			}
		case "graph":
			if _, ok := m["error"].(map[string]any); !ok {
				t.Errorf("%s: want the Graph error body, got %s", tc.name, r.body)
			}
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "scope": {ResourceGraph + "/.default"}}
	for _, origin := range []string{e.Licensing, e.Graph} {
		resp, err := f.client.PostForm(origin+"/"+f.tenant+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token endpoint on %s: want 401 (no such route, no bearer token), got %d", origin, resp.StatusCode)
		}
	}
	for _, origin := range []string{e.AuthorityHost, e.Licensing, e.Graph} {
		if r := f.do(t, "GET", origin+"/_sim/tenants/"+f.tenant, "", nil, nil); r.status != 200 {
			t.Errorf("admin API on %s: %d", origin, r.status)
		}
	}
	if f.sim.Handler(EndpointGraph) == nil || f.sim.Handler("admin") != nil {
		t.Error("Handler(endpoint) must name the three listeners only")
	}
}
