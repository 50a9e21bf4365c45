package m365sim

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestThrottleAndEarlyRequests(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Method: "GET", Status: 429, RetryAfter: "30", Count: 1}); err != nil {
		t.Fatal(err)
	}
	path := f.licensing("/v1.0/policies/AllowSelfServicePurchase/products")
	first := f.do(t, "GET", path, tok, nil, nil)
	if first.status != 429 || first.header.Get("Retry-After") != "30" || first.json(t)["errorCode"] != "TooManyRequests" {
		t.Fatalf("throttled answer: %d %v %s", first.status, first.header, first.body)
	}
	f.clock.Advance(10 * time.Second)
	if r := f.do(t, "GET", path, tok, nil, nil); r.status != 200 {
		t.Errorf("an early request is still served; got %d", r.status)
	}
	if r := f.do(t, "GET", f.graph("/v1.0/subscribedSkus"), f.graphToken(t), nil, nil); r.status != 200 {
		t.Errorf("graph: %d", r.status)
	}
	f.clock.Advance(21 * time.Second)
	f.do(t, "GET", path, tok, nil, nil)

	log := f.sim.Requests(f.tenant)
	type row struct {
		Endpoint string
		Status   int
		Early    bool
	}
	var got []row
	for _, e := range log.Entries {
		if e.Endpoint != EndpointAuthority {
			got = append(got, row{e.Endpoint, e.Status, e.Early})
		}
	}
	want := []row{{EndpointLicensing, 429, false}, {EndpointLicensing, 200, true}, {EndpointGraph, 200, false}, {EndpointLicensing, 200, false}}
	if diff := cmp.Diff(want, got); diff != "" || log.EarlyRequests != 1 {
		t.Errorf("early requests = %d; entries (-want +got):\n%s", log.EarlyRequests, diff)
	}
}

func TestFaultKinds(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	subs := f.graph("/v1.0/directory/subscriptions")

	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointGraph, Drop: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", subs, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := f.client.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropped request: want a transport error, got %d", resp.StatusCode)
	}

	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointGraph, Latency: 80 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := f.do(t, "GET", subs, tok, nil, nil); r.status != 200 || time.Since(start) < 80*time.Millisecond {
		t.Errorf("latency fault: %d after %s", r.status, time.Since(start))
	}

	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointGraph, PathPrefix: "/v1.0/users", Status: 503}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", subs, tok, nil, nil); r.status != 200 {
		t.Errorf("a path prefix limits the fault: %d", r.status)
	}
	for range 2 { // Count 0: until cleared
		r := f.do(t, "GET", f.graph("/v1.0/users/x"), tok, nil, nil)
		if r.status != 503 || r.json(t)["error"].(map[string]any)["code"] != "ServiceUnavailable" {
			t.Errorf("graph 503 in Graph style: %d %s", r.status, r.body)
		}
	}
	f.sim.ClearFaults(f.tenant)
	if r := f.do(t, "GET", f.graph("/v1.0/users/x"), tok, nil, nil); r.status != 404 {
		t.Errorf("after ClearFaults: %d", r.status)
	}

	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointAuthority, Method: "POST", Status: 503, RetryAfter: "5", Count: 1}); err != nil {
		t.Fatal(err)
	}
	r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "scope": {ResourceGraph + "/.default"}})
	if r.status != 503 || r.header.Get("Retry-After") != "5" || r.json(t)["error"] != "temporarily_unavailable" {
		t.Errorf("authority fault: %d %s", r.status, r.body)
	}
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: "billing"}); err == nil {
		t.Error("an unknown endpoint must be refused")
	}
}

func TestCountersIgnoreAdminCalls(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products"), tok, nil, nil)
	f.do(t, "PUT", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products/CFQ7TTC0MM8R"), tok, map[string]string{"policyValue": "Disabled"}, nil)
	for _, p := range []string{"/products", "/subscriptions", "/requests", "/users"} {
		if r := f.do(t, "GET", f.admin(p), "", nil, nil); r.status != 200 {
			t.Errorf("admin GET %s: %d", p, r.status)
		}
	}
	want := map[string]int{
		"authority POST": 1, "authority POST token": 1,
		"licensing GET": 1, "licensing GET products": 1,
		"licensing PUT": 1, "licensing PUT product": 1,
	}
	got := f.sim.Requests(f.tenant)
	if diff := cmp.Diff(want, got.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got.Entries[0].Caller != testClient {
		t.Errorf("caller: %q", got.Entries[0].Caller)
	}
	f.sim.ResetRequests(f.tenant)
	if n := len(f.sim.Requests(f.tenant).Entries); n != 0 {
		t.Errorf("after reset: %d entries", n)
	}
}
