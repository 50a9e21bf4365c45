package m365sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a started simulator with one tenant that has the sample
// directory and an app with every permission.
type fixture struct {
	sim    *Server
	clock  *fakeClock
	client *http.Client
	tenant string
}

const (
	testClient = "11111111-2222-3333-4444-555555555555"
	testSecret = "s3cr3t-value"
)

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	clock := newClock()
	opts := Options{Now: clock.Now, Seed: 7}
	if mod != nil {
		mod(&opts)
	}
	sim, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	info, err := sim.AddTenant(TenantConfig{Name: "Contoso", WithSampleDirectory: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.RegisterApp(info.ID, App{ClientID: testClient, Secret: testSecret, Permissions: AllPermissions}); err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, clock: clock, client: sim.HTTPClient(), tenant: info.ID}
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return m
}

// do sends a request; body may be nil, a string (sent as is) or a value (JSON).
func (f *fixture) do(t *testing.T, method, u, token string, body any, header map[string]string) response {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd, ctype = bytes.NewReader(raw), "application/json"
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// tokenRequest posts a form to the tenant's token endpoint.
func (f *fixture) tokenRequest(t *testing.T, tenant string, form url.Values) response {
	t.Helper()
	u := f.sim.Endpoints().AuthorityHost + "/" + tenant + "/oauth2/v2.0/token"
	resp, err := f.client.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// token returns an access token of the test app for scope.
func (f *fixture) token(t *testing.T, clientID, secret, scope string) string {
	t.Helper()
	r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}})
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r.json(t)["access_token"].(string)
}

func (f *fixture) licensingToken(t *testing.T) string {
	return f.token(t, testClient, testSecret, ResourceLicensing+"/.default")
}

func (f *fixture) graphToken(t *testing.T) string {
	return f.token(t, testClient, testSecret, ResourceGraph+"/.default")
}

func (f *fixture) licensing(path string) string { return f.sim.Endpoints().Licensing + path }
func (f *fixture) graph(path string) string     { return f.sim.Endpoints().Graph + path }
func (f *fixture) admin(path string) string {
	return f.sim.AdminURL() + "/_sim/tenants/" + f.tenant + path
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
