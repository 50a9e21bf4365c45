package m365sim

import (
	"maps"
	"net/http"
	"slices"
)

// RequestStats are the request counters of the whole fleet, for benchmarks.
type RequestStats struct {
	// Counts sums every tenant's RequestLog.Counts (same keys).
	Counts map[string]int `json:"counts"`
	// EarlyRequests and Throttled sum the tenants' counters.
	EarlyRequests int `json:"earlyRequests"`
	Throttled     int `json:"throttled"`
	// Failed sums the tenants' RequestLog.Failed (same keys).
	Failed map[string]int `json:"failed"`
	// Unattributed counts requests refused before a tenant was known (no or
	// bad token, unknown tenant); they are in no tenant's log.
	Unattributed int `json:"unattributed"`
	Tenants      int `json:"tenants"`
}

// RequestStats sums the request logs of every tenant.
func (s *Server) RequestStats() RequestStats {
	out := RequestStats{Counts: map[string]int{}, Failed: map[string]int{}, Unattributed: int(s.unattributed.Load())}
	for _, t := range s.allTenants() {
		t.mu.Lock()
		for k, v := range t.log.counts {
			out.Counts[k] += v
		}
		out.EarlyRequests += t.log.early
		out.Throttled += t.log.throttled
		for k, v := range t.log.failed {
			out.Failed[k] += v
		}
		t.mu.Unlock()
		out.Tenants++
	}
	return out
}

// ResetAllRequests empties every tenant's request log and the unattributed
// counter; remembered Retry-After deadlines stay.
func (s *Server) ResetAllRequests() {
	for _, t := range s.allTenants() {
		t.mu.Lock()
		t.log = requestLog{}
		t.mu.Unlock()
	}
	s.unattributed.Store(0)
}

// allTenants returns every tenant (unlocked).
func (s *Server) allTenants() []*tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Collect(maps.Values(s.tenants))
}

func (s *Server) adminRequestStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.RequestStats())
}

func (s *Server) adminResetAllRequests(w http.ResponseWriter, _ *http.Request) {
	s.ResetAllRequests()
	w.WriteHeader(http.StatusNoContent)
}
