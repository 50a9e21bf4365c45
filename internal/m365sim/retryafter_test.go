package m365sim

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterForms(t *testing.T) {
	cases := []struct {
		name, value string
		// earlyAfter: a request this long after the 429 is still early.
		earlyAfter time.Duration
		early      bool
	}{
		{"huge", "100000000", 1000 * time.Hour, true},
		{"near int64 overflow", "9200000000", 1000 * time.Hour, true},
		{"beyond uint64", "99999999999999999999999", 1000 * time.Hour, true},
		{"HTTP date", newClock().Now().Add(2 * time.Hour).Format(http.TimeFormat), time.Hour, true},
		{"HTTP date passed", newClock().Now().Add(2 * time.Hour).Format(http.TimeFormat), 3 * time.Hour, false},
		{"zero", "0", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tok := f.licensingToken(t)
			if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Status: http.StatusTooManyRequests, RetryAfter: tc.value, Count: 1}); err != nil {
				t.Fatal(err)
			}
			r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil)
			if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != tc.value || r.json(t)["errorCode"] != "TooManyRequests" {
				t.Fatalf("the value passes through verbatim: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			f.clock.Advance(tc.earlyAfter)
			if r := f.do(t, "GET", f.licensing(productsPath), f.licensingToken(t), nil, nil); r.status != http.StatusOK {
				t.Fatalf("the fault was used up: %d", r.status)
			}
			if got := f.sim.Requests(f.tenant).EarlyRequests; got != map[bool]int{true: 1, false: 0}[tc.early] {
				t.Errorf("a request %s after Retry-After %q: early requests %d, want early=%t", tc.earlyAfter, tc.value, got, tc.early)
			}
		})
	}
}

// With Options.InFlight a request soon after the Retry-After answer counts as
// already sent; one after that window and before the deadline is early.
func TestInFlightRequestIsNotEarly(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.InFlight = time.Second })
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointLicensing, Status: http.StatusTooManyRequests, RetryAfter: "10", Count: 1}); err != nil {
		t.Fatal(err)
	}
	tok := f.licensingToken(t)
	if r := f.do(t, "GET", f.licensing(productsPath), tok, nil, nil); r.status != http.StatusTooManyRequests {
		t.Fatalf("want the injected 429, got %d", r.status)
	}
	for _, step := range []struct {
		advance time.Duration
		early   int
	}{{500 * time.Millisecond, 0}, {time.Second, 1}, {10 * time.Second, 1}} {
		f.clock.Advance(step.advance)
		f.do(t, "GET", f.licensing(productsPath), tok, nil, nil)
		if got := f.sim.Requests(f.tenant).EarlyRequests; got != step.early {
			t.Fatalf("after another %v: %d early requests, want %d", step.advance, got, step.early)
		}
	}
}
