package m365sim

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
)

// Chaos fails a share of all tenants' licensing, Graph and authority calls
// at random, as a flaky network or an overloaded service does: after the
// round trip and throttling, before injected faults and the service, so a
// failed call (a PUT included) changes nothing. Rates are shares of calls
// (0.2 = 20%); 0 = off.
type Chaos struct {
	// ErrorRate is the share answered 500, 502, 503 or 504 (about a quarter
	// each) in the service's error format.
	ErrorRate float64 `json:"errorRate"`
	// DropRate is the share whose connection is closed without an answer.
	DropRate float64 `json:"dropRate"`
	// RetryAfter is sent with the 503s (seconds or an HTTP date; "" = none),
	// and remembered like any Retry-After: a request before it passed is early.
	RetryAfter string `json:"retryAfter,omitempty"`
	// Endpoints limits chaos to these services ("authority", "licensing",
	// "graph"; empty = all).
	Endpoints []string `json:"endpoints,omitempty"`
}

func (c Chaos) validate() error {
	if c.ErrorRate < 0 || c.DropRate < 0 || c.ErrorRate+c.DropRate > 1 {
		return fmt.Errorf("%w: chaos errorRate and dropRate must be shares (0..1) adding up to at most 1", ErrInvalid)
	}
	for _, ep := range c.Endpoints {
		if !slices.Contains(listenerEndpoints[:], ep) {
			return fmt.Errorf("%w: chaos endpoint %q (want authority, licensing or graph)", ErrInvalid, ep)
		}
	}
	return nil
}

// chaosStatuses are the 5xx a chaotic call is answered with.
var chaosStatuses = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// chaos fails the call at random per the traffic's Chaos: it drops the
// connection or answers a 5xx, and reports whether the call is finished.
func (s *Server) chaos(w http.ResponseWriter, c *call) bool {
	ch := s.traffic.Load().Chaos
	if ch.ErrorRate <= 0 && ch.DropRate <= 0 || len(ch.Endpoints) > 0 && !slices.Contains(ch.Endpoints, c.endpoint) {
		return false
	}
	switch x := rand.Float64(); {
	case x < ch.DropRate:
		panic(http.ErrAbortHandler) // net/http closes the connection without an answer
	case x < ch.DropRate+ch.ErrorRate:
		status := chaosStatuses[rand.IntN(len(chaosStatuses))]
		if status == http.StatusServiceUnavailable && ch.RetryAfter != "" {
			w.Header().Set("Retry-After", ch.RetryAfter)
		}
		styleOf(c.endpoint).write(w, status, codeForStatus(c.endpoint, status), "Chaos: "+http.StatusText(status)+".")
		return true
	}
	return false
}
