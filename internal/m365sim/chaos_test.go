package m365sim

import (
	"net/http"
	"testing"
)

// TestChaos: a share of the calls fails at random, changing nothing: 5xx in
// the service's format (503 with the configured Retry-After), or a dropped
// connection; the request log counts each as failed.
func TestChaos(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	put := f.do(t, "PUT", f.sim.AdminURL()+"/_sim/traffic", "", map[string]any{"chaos": map[string]any{"errorRate": 1, "retryAfter": "7"}}, nil)
	if put.status != http.StatusOK || f.sim.Traffic().Chaos.ErrorRate != 1 {
		t.Fatalf("PUT /_sim/traffic chaos: %d %s", put.status, put.body)
	}
	statuses := map[int]bool{}
	for range 40 {
		r := f.do(t, "PUT", f.licensing(productsPath+"/CFQ7TTC0MM8R"), tok, map[string]string{"policyValue": PolicyDisabled}, nil)
		statuses[r.status] = true
		if r.status < 500 || r.json(t)["errorCode"] == nil {
			t.Fatalf("errorRate 1: every call a 5xx in the licensing format, got %d %s", r.status, r.body)
		}
		if ra := r.header.Get("Retry-After"); (r.status == http.StatusServiceUnavailable) != (ra == "7") {
			t.Errorf("%d with Retry-After %q: only 503s carry it", r.status, ra)
		}
	}
	if len(statuses) < 2 {
		t.Errorf("one status only in 40 calls: %v", statuses)
	}
	if got, _ := f.sim.Policy(f.tenant, "CFQ7TTC0MM8R"); got != PolicyEnabled {
		t.Errorf("a failed PUT changed the product to %s", got)
	}

	if err := f.sim.SetTraffic(Traffic{Chaos: Chaos{DropRate: 1}}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.licensing(productsPath), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := f.client.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("dropRate 1: connection dropped, got %d", resp.StatusCode)
	}

	if err := f.sim.SetTraffic(Traffic{Chaos: Chaos{ErrorRate: 1, Endpoints: []string{EndpointGraph}}}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil); r.status != http.StatusOK {
		t.Errorf("chaos on Graph only: licensing answers, got %d", r.status)
	}
	log := f.sim.Requests(f.tenant)
	if log.Failed["licensing PUT"] != 40 || log.Failed["licensing GET"] < 1 || log.Counts["licensing GET"] != log.Failed["licensing GET"]+1 {
		t.Errorf("failed counts: %v of %v", log.Failed, log.Counts)
	}
	if r := f.do(t, "PUT", f.sim.AdminURL()+"/_sim/traffic", "", map[string]any{"chaos": map[string]any{"errorRate": 0.9, "dropRate": 0.2}}, nil); r.status != http.StatusBadRequest {
		t.Errorf("rates adding up to more than 1: want 400, got %d", r.status)
	}
	if err := f.sim.SetTraffic(Traffic{Chaos: Chaos{ErrorRate: 0.1, Endpoints: []string{"sharepoint"}}}); err == nil {
		t.Error("an unknown chaos endpoint is refused")
	}
}
