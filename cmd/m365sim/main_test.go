package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

func TestStartWritesReadyFileAndServes(t *testing.T) {
	dir := t.TempDir()
	fleet := `{"tenants":[{"id":"72f988bf-86f1-41af-91ab-2d7cd011db47","name":"Contoso","sampleDirectory":true,
	  "apps":[{"clientId":"app-1","secret":"pw-1","permissions":["Policy.Read.AllowSelfServicePurchase"]}],
	  "delegated":[{"clientId":"app-1","roles":["Billing Administrator"]}]}]}`
	if err := os.WriteFile(filepath.Join(dir, "tenants.json"), []byte(fleet), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ready, ca := filepath.Join(dir, "ready.json"), filepath.Join(dir, "ca.pem")
	sim, err := start([]string{"--tenants", "2", "--tenants-file", filepath.Join(dir, "tenants.json"), "--ca-file", ca, "--ready-file", ready, "--seed", "3"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var info m365sim.ReadyInfo
	b, err := os.ReadFile(ready)
	if err != nil || json.Unmarshal(b, &info) != nil {
		t.Fatalf("ready file: %v %s", err, b)
	}
	if len(info.Tenants) != 3 || info.Tenants[0].Delegated[0].RefreshToken == "" || info.Tenants[1].Apps[0].Secret == "" {
		t.Fatalf("ready file tenants: %+v", info.Tenants)
	}
	want := m365sim.Traffic{Latency: defaultLatency, LatencyJitter: defaultJitter, Throttle: m365sim.Throttle{Rate: defaultThrottleRate, Burst: defaultThrottleBurst}}
	if got := sim.Traffic(); !reflect.DeepEqual(got, want) || info.LeakSink == "" || info.LeakSink != sim.LeakSinkURL() {
		t.Errorf("defaults: latency and throttling %+v (want %+v), leak sink %q", got, want, info.LeakSink)
	}
	if strings.Contains(out.String(), info.Tenants[1].Apps[0].Secret) || !strings.Contains(out.String(), info.Licensing) {
		t.Errorf("stdout must name the endpoints and keep secrets in the ready file:\n%s", out.String())
	}
	// A client trusting only --ca-file gets a token for a generated tenant.
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CA file holds no certificate")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	gen := info.Tenants[1]
	resp, err := client.PostForm(info.AuthorityHost+"/"+gen.ID+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {gen.Apps[0].ClientID}, "client_secret": {gen.Apps[0].Secret}, "scope": {m365sim.ResourceLicensing + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token for a generated tenant: %d", resp.StatusCode)
	}
}

func TestParseFlagsRejectsBadInput(t *testing.T) {
	cases := map[string][]string{
		"unknown flag":     {"--nope"},
		"negative tenants": {"--tenants", "-1"},
		"stray argument":   {"extra"},
		"bad lifetime":     {"--token-lifetime", "soon"},
		"negative latency": {"--latency", "-1ms"},
		"negative rate":    {"--throttle-rate", "-2"},
	}
	for name, args := range cases {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestGeneratedTenantsAreDeterministic(t *testing.T) {
	ids := func() []string {
		sim, err := m365sim.New(m365sim.Options{Seed: 9})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := sim.GenerateFleet(2)
		if err != nil {
			t.Fatal(err)
		}
		return []string{ts[0].ID, ts[1].ID, ts[1].Apps[0].ClientID, ts[1].Apps[0].Secret}
	}
	a, b := ids(), ids()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different fleet: %v %v", a, b)
		}
	}
}

func TestTenantsFileDeclaresPartnersSettingsAndDeviceTiming(t *testing.T) {
	dir := t.TempDir()
	fleet := `{"tenants":[
	  {"id":"9a000000-0000-4000-8000-000000000001","name":"Partner","customers":[{"tenantId":"9a000000-0000-4000-8000-000000000002"}]},
	  {"id":"9a000000-0000-4000-8000-000000000002","name":"Customer","settings":{"isOfficeStoreEnabled":false,"appsAndServicesMode":"NotFound"}}]}`
	file := filepath.Join(dir, "tenants.json")
	if err := os.WriteFile(file, []byte(fleet), 0o600); err != nil {
		t.Fatal(err)
	}
	sim, err := start([]string{"--tenants-file", file, "--device-code-interval", "1s", "--device-code-lifetime", "2m"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	customers, err := sim.DelegatedAdminCustomers("9a000000-0000-4000-8000-000000000001")
	if err != nil || len(customers) != 1 || customers[0].DisplayName != "Customer" {
		t.Errorf("partner customers: %+v %v", customers, err)
	}
	if s, _ := sim.Settings("9a000000-0000-4000-8000-000000000002"); s.IsOfficeStoreEnabled || s.AppsAndServicesMode != m365sim.AppsAndServicesNotFound {
		t.Errorf("customer settings: %+v", s)
	}
	resp, err := sim.HTTPClient().PostForm(sim.Endpoints().AuthorityHost+"/9a000000-0000-4000-8000-000000000001/oauth2/v2.0/devicecode",
		url.Values{"client_id": {m365sim.CommerceModuleClientID}, "scope": {m365sim.ResourceLicensing + "/.default offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var dc struct {
		ExpiresIn int `json:"expires_in"`
		Interval  int `json:"interval"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dc); err != nil || dc.Interval != 1 || dc.ExpiresIn != 120 {
		t.Errorf("device code timing from the flags: %+v %v", dc, err)
	}
}

// TestDefaultThrottleSparesHonestClients proves the defaults' claim on the
// simulator clock: 4 requests in flight per tenant at the fastest default
// round trip (latency - jitter) are never throttled, however long they go on,
// while a client sending a tenant's 20 PUTs at once is.
func TestDefaultThrottleSparesHonestClients(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	sim, err := m365sim.New(m365sim.Options{Now: clock, Throttle: m365sim.Throttle{Rate: defaultThrottleRate, Burst: defaultThrottleBurst}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ten, err := sim.AddTenant(m365sim.TenantConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.RegisterApp(ten.ID, m365sim.App{ClientID: "app", Secret: "pw", Permissions: m365sim.AllPermissions}); err != nil {
		t.Fatal(err)
	}
	client := sim.HTTPClient()
	resp, err := client.PostForm(sim.Endpoints().AuthorityHost+"/"+ten.ID+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {"app"}, "client_secret": {"pw"}, "scope": {m365sim.ResourceLicensing + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	put := sim.Endpoints().Licensing + "/v1.0/policies/AllowSelfServicePurchase/products/CFQ7TTC0MM8R"
	// wave sends n PUTs at once and counts the 429s.
	wave := func(n int) int {
		var throttled atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPut, put, strings.NewReader(`{"policyValue":"Disabled"}`))
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("Content-Type", "application/json")
				if r, err := client.Do(req); err == nil {
					if r.StatusCode == http.StatusTooManyRequests {
						throttled.Add(1)
					}
					r.Body.Close()
				}
			})
		}
		wg.Wait()
		return int(throttled.Load())
	}
	honest := 0
	for range 100 { // 400 PUTs over 12 s of simulator time
		honest += wave(4)
		advance(defaultLatency - defaultJitter)
	}
	if honest != 0 {
		t.Errorf("4 in flight at %s round trips: %d throttled, want 0", defaultLatency-defaultJitter, honest)
	}
	advance(time.Minute)
	if got := wave(20); got != 20-defaultThrottleBurst {
		t.Errorf("20 PUTs at once: %d throttled, want all past the burst of %d", got, defaultThrottleBurst)
	}
}
