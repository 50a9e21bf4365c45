package m365sim

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

const productsPath = "/v1.0/policies/AllowSelfServicePurchase/products"

func TestThrottleTokenBucket(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Throttle = Throttle{Rate: 2, Burst: 3} })
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "other-app", Secret: "other", Permissions: AllPermissions}); err != nil {
		t.Fatal(err)
	}
	// Tokens first: the authority has a bucket of its own (2 of its 3 used).
	tok, other, graphTok := f.licensingToken(t), f.token(t, "other-app", "other", ResourceLicensing+"/.default"), f.graphToken(t)
	list := f.licensing(productsPath)
	for i := range 3 {
		if r := f.do(t, "GET", list, tok, nil, nil); r.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := f.do(t, "GET", list, tok, nil, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("past the burst: want 429 with Retry-After 1 (next token in 0.5 s, rounded up), got %d %q", r.status, r.header.Get("Retry-After"))
	}
	if body := r.json(t); body["errorCode"] != "TooManyRequests" || body["reason"] == "" {
		t.Errorf("licensing throttling body: %s", r.body)
	}
	if r := f.do(t, "GET", list, other, nil, nil); r.status != http.StatusOK {
		t.Errorf("another app of the tenant has its own bucket: %d", r.status)
	}
	if r := f.do(t, "GET", f.graph("/v1.0/subscribedSkus"), graphTok, nil, nil); r.status != http.StatusOK {
		t.Errorf("Graph has its own bucket: %d", r.status)
	}
	if r := f.do(t, "GET", list, tok, nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("a retry before Retry-After: want 429, got %d", r.status)
	}
	f.clock.Advance(time.Second)
	if r := f.do(t, "GET", list, tok, nil, nil); r.status != http.StatusOK {
		t.Errorf("after Retry-After a token is there: %d", r.status)
	}
	log := f.sim.Requests(f.tenant)
	if log.EarlyRequests != 1 || log.Throttled != 2 {
		t.Errorf("only the same app's retry before Retry-After is early, 2 throttled: early %d, throttled %d", log.EarlyRequests, log.Throttled)
	}
}

func TestThrottleRetryAfterRoundsUp(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Throttle = Throttle{Rate: 0.3, Burst: 1} })
	tok := f.graphToken(t)
	skus := f.graph("/v1.0/subscribedSkus")
	f.do(t, "GET", skus, tok, nil, nil)
	r := f.do(t, "GET", skus, tok, nil, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "4" {
		t.Fatalf("one token per 3.33 s: want Retry-After 4, got %d %q", r.status, r.header.Get("Retry-After"))
	}
	e, _ := r.json(t)["error"].(map[string]any)
	inner, _ := e["innerError"].(map[string]any)
	if e["code"] != "TooManyRequests" || inner["status"] != "429" || inner["request-id"] != r.header.Get("request-id") {
		t.Errorf("Graph throttling body in Graph's shape: %s (request-id %s)", r.body, r.header.Get("request-id"))
	}
}

func TestThrottleOffAndRuntimeTraffic(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.licensingToken(t)
	for range 20 {
		if r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil); r.status != http.StatusOK {
			t.Fatalf("no throttling by default: %d", r.status)
		}
	}
	put := f.do(t, "PUT", f.sim.AdminURL()+"/_sim/traffic", "", map[string]any{"throttle": map[string]any{"rate": 1, "burst": 1}, "latency": "0s"}, nil)
	if put.status != http.StatusOK || f.sim.Traffic().Throttle != (Throttle{Rate: 1, Burst: 1}) {
		t.Fatalf("PUT /_sim/traffic: %d %s", put.status, put.body)
	}
	f.do(t, "GET", f.licensing(productsPath), tok, nil, nil)
	if r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil); r.status != http.StatusTooManyRequests {
		t.Errorf("throttling switched on at run time: %d", r.status)
	}
	if r := f.do(t, "PUT", f.sim.AdminURL()+"/_sim/traffic", "", map[string]any{"latency": "-1s"}, nil); r.status != http.StatusBadRequest {
		t.Errorf("negative latency: want 400, got %d", r.status)
	}
}

func TestLatencyHoldsNoLock(t *testing.T) {
	const latency = 300 * time.Millisecond
	f := newFixture(t, nil)
	tok := f.licensingToken(t) // before the latency, to time only the list calls
	if err := f.sim.SetTraffic(Traffic{Latency: latency, LatencyJitter: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil); r.status != http.StatusOK || time.Since(start) < latency-50*time.Millisecond {
		t.Fatalf("one call takes the round trip: %d after %s", r.status, time.Since(start))
	}
	const n = 20
	var wg sync.WaitGroup
	start = time.Now()
	for range n {
		wg.Go(func() { f.do(t, "GET", f.licensing(productsPath), tok, nil, nil) })
	}
	wg.Wait()
	// Serialised by a lock, 20 calls of one tenant would take 20 × 300 ms.
	if took := time.Since(start); took > n*latency/2 {
		t.Errorf("%d concurrent calls of one tenant took %s: the latency is serialised", n, took)
	}
}
