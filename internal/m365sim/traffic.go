package m365sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Throttle is Microsoft-style throttling: a token bucket per tenant, client
// app and endpoint that refills Rate tokens a second up to Burst. A request
// that finds the bucket empty is answered 429 with a Retry-After of the
// seconds until the next token (rounded up, at least 1). Rate 0 = off.
type Throttle struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// Traffic is how the whole simulator's network behaves: latency and
// throttling, changeable at run time.
type Traffic struct {
	// Latency ± LatencyJitter (uniform) delays every licensing, Graph and
	// authority call before it is served.
	Latency       time.Duration `json:"latency"`
	LatencyJitter time.Duration `json:"latencyJitter"`
	Throttle      Throttle      `json:"throttle"`
	// Chaos fails a share of the calls at random.
	Chaos Chaos `json:"chaos"`
}

// trafficState is one generation of traffic settings; throttle buckets made
// under another generation are replaced.
type trafficState struct {
	Traffic
	gen uint64
}

func (st Traffic) validate() error {
	if st.Latency < 0 || st.LatencyJitter < 0 || st.Throttle.Rate < 0 || st.Throttle.Burst < 0 {
		return fmt.Errorf("%w: latency, jitter, rate and burst must not be negative", ErrInvalid)
	}
	return st.Chaos.validate()
}

// Traffic returns the current latency and throttling.
func (s *Server) Traffic() Traffic { return s.traffic.Load().Traffic }

// SetTraffic changes latency and throttling at run time; a throttle change
// refills every bucket.
func (s *Server) SetTraffic(st Traffic) error {
	if err := st.validate(); err != nil {
		return err
	}
	s.setTraffic(st)
	return nil
}

func (s *Server) setTraffic(st Traffic) {
	if st.Throttle.Rate > 0 && st.Throttle.Burst <= 0 {
		st.Throttle.Burst = 1
	}
	var gen uint64
	if old := s.traffic.Load(); old != nil {
		gen = old.gen
		if old.Throttle != st.Throttle {
			gen++
		}
	}
	s.traffic.Store(&trafficState{Traffic: st, gen: gen})
}

// roundTrip waits one simulated round trip to Microsoft. It holds no lock.
// It reports false when the client gave up meanwhile.
func (s *Server) roundTrip(ctx context.Context) bool {
	st := s.traffic.Load()
	d := st.Latency
	if j := st.LatencyJitter; j > 0 {
		d += time.Duration(rand.Int64N(int64(2*j)+1)) - j
	}
	if d <= 0 {
		return true
	}
	return sleepCtx(ctx, d) == nil
}

// unattributedCall counts a request refused before its tenant was known and
// waits its round trip like any other.
func (s *Server) unattributedCall(r *http.Request) {
	s.unattributed.Add(1)
	s.roundTrip(r.Context())
}

// admit runs the steps between arrival and the service: the round trip, the
// subscription lifecycle on the simulator clock, throttling and chaos. It
// reports false when the request is finished (throttled, failed by chaos or
// abandoned).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, c *call) bool {
	if !s.roundTrip(r.Context()) {
		return false
	}
	c.tenant.mu.Lock()
	c.tenant.tick(s.now(), s.opts.Lifecycle)
	c.tenant.mu.Unlock()
	return !s.throttle(w, c) && !s.chaos(w, c)
}

// trafficJSON is the admin API form of Traffic: durations as strings
// ("150ms") on the way out, strings or nanoseconds on the way in.
type trafficJSON struct {
	Latency       json.RawMessage `json:"latency,omitempty"`
	LatencyJitter json.RawMessage `json:"latencyJitter,omitempty"`
	Throttle      *Throttle       `json:"throttle,omitempty"`
	Chaos         *Chaos          `json:"chaos,omitempty"`
}

func (s *Server) adminGetTraffic(w http.ResponseWriter, _ *http.Request) {
	st := s.Traffic()
	writeJSON(w, http.StatusOK, map[string]any{"latency": st.Latency.String(), "latencyJitter": st.LatencyJitter.String(), "throttle": st.Throttle, "chaos": st.Chaos})
}

// adminPutTraffic changes the fields present in the body.
func (s *Server) adminPutTraffic(w http.ResponseWriter, r *http.Request) {
	var req trafficJSON
	if !decodeBody(w, r, &req) {
		return
	}
	st := s.Traffic()
	if err := parseDurations(durationField{req.Latency, &st.Latency}, durationField{req.LatencyJitter, &st.LatencyJitter}); err != nil {
		adminError(w, err)
		return
	}
	if req.Throttle != nil {
		st.Throttle = *req.Throttle
	}
	if req.Chaos != nil {
		st.Chaos = *req.Chaos
	}
	if err := s.SetTraffic(st); err != nil {
		adminError(w, err)
		return
	}
	s.adminGetTraffic(w, r)
}
