package m365

import (
	"net/http"
	"sync"
	"time"
)

// Gate keeps a not-before time per (tenant, endpoint host). Once a service has
// answered with Retry-After, no request for that tenant leaves for that host
// until the time has passed, whatever triggered it: the request fails at once
// with a Throttled *Error carrying the remaining wait.
type Gate struct {
	mu    sync.Mutex
	until map[gateKey]time.Time
	now   func() time.Time
}

type gateKey struct{ tenant, host string }

// NewGate returns an empty gate. now may be nil (time.Now).
func NewGate(now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	return &Gate{until: map[gateKey]time.Time{}, now: now}
}

// CallDefaults fills what a client's options leave unset: the clock
// (time.Now), the not-before gate (a private one on that clock) and the
// per-call timeout (DefaultCallTimeout).
func CallDefaults(now func() time.Time, gate *Gate, timeout time.Duration) (func() time.Time, *Gate, time.Duration) {
	if now == nil {
		now = time.Now
	}
	if gate == nil {
		gate = NewGate(now)
	}
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return now, gate, timeout
}

// Check returns a Throttled error if tenant must not call host yet.
func (g *Gate) Check(tenant, host string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := gateKey{tenant, host}
	t, ok := g.until[k]
	if !ok {
		return nil
	}
	if d := t.Sub(g.now()); d > 0 {
		return &Error{Kind: Throttled, Reason: "waiting for an earlier Retry-After from " + host, RetryAfter: d}
	}
	delete(g.until, k)
	return nil
}

// Defer forbids calls from tenant to host for d from now, d capped at
// MaxRetryAfter (so the gate never holds a tenant longer, whatever arithmetic
// produced d). A shorter wait never shortens a longer one already recorded.
func (g *Gate) Defer(tenant, host string, d time.Duration) {
	if d <= 0 {
		return
	}
	d = min(d, MaxRetryAfter)
	g.mu.Lock()
	defer g.mu.Unlock()
	k := gateKey{tenant, host}
	t := g.now().Add(d)
	if t.After(g.until[k]) {
		g.until[k] = t
	}
}

// Transport returns a RoundTripper that sends tenant's requests through base
// only when the gate allows, and records the Retry-After of any 429 or 503.
// A request it holds back is reported to base when base counts them
// (TransportMetrics.Transport).
func (g *Gate) Transport(tenant string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &gatedTransport{gate: g, tenant: tenant, base: base}
}

type gatedTransport struct {
	gate   *Gate
	tenant string
	base   http.RoundTripper
}

func (t *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.gate.Check(t.tenant, req.URL.Host); err != nil {
		if o, ok := t.base.(holdObserver); ok {
			o.heldBack()
		}
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if d, ok := throttleWait(resp, t.gate.now()); ok {
		t.gate.Defer(t.tenant, req.URL.Host, d)
	}
	return resp, nil
}
