package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Request keys of the simulator's request log ("<endpoint> <METHOD> <route>")
// that the request floor names (docs/decisions.md, "The request floor").
const (
	keyProducts       = "licensing GET products"
	keyOfferTypes     = "licensing GET offerType"
	keyPut            = "licensing PUT product"
	keySubscriptions  = "graph GET subscriptions"
	keySubscribedSkus = "graph GET subscribedSkus"
	keyToken          = "authority POST token"
)

// tokenEndpoint is the simulator's name of the Entra endpoint: its requests
// are token acquisition, counted apart from the ratio.
const tokenEndpoint = "authority"

// tokenResources is how many resources a policy needs tokens for: the
// licensing API and Graph.
const tokenResources = 2

// floor is what the request floor allows a phase to cost on Microsoft's side: per
// sync one product list (one offer-type list only with offerTypes, which the
// fleet has none of), one page of subscriptions and one of subscribed SKUs;
// one PUT per differing product; tokens at most one per token lifetime per
// tenant and resource.
type floor struct {
	syncs, puts, tokens int
}

func (f floor) counts() map[string]int {
	return map[string]int{
		keyProducts: f.syncs, keySubscriptions: f.syncs, keySubscribedSkus: f.syncs,
		keyPut: f.puts, keyToken: f.tokens,
	}
}

// msReport compares a phase's Microsoft requests with its floor.
type msReport struct {
	// Requests are the observed counts by "<endpoint> <METHOD> <route>".
	Requests map[string]int `json:"requests"`
	Floor    map[string]int `json:"floor"`
	// Ratio is requests over floor, Entra (token) requests excluded: they
	// are counted apart, per token lifetime.
	Ratio     float64 `json:"ratio"`
	Throttled int     `json:"throttled"`
	Early     int     `json:"earlyRequests"`
	// Unattributed were refused before a tenant was known (bad token).
	Unattributed int      `json:"unattributed"`
	Excess       []string `json:"excess,omitempty"`
}

// compareWithFloor builds a phase's msReport: requests and floor by route,
// the ratio, and every route above its floor with what explains it (the
// phase's reconciles tell extra syncs).
func compareWithFloor(r m365sim.RequestStats, f floor, reconciles int) msReport {
	rep := msReport{Requests: routeCounts(r.Counts), Floor: f.counts(), Throttled: r.Throttled, Early: r.EarlyRequests,
		Unattributed: r.Unattributed}
	var seen, allowed int
	excess := false
	for _, k := range keysOf(rep.Requests, rep.Floor) {
		got, want := rep.Requests[k], rep.Floor[k]
		token := strings.HasPrefix(k, tokenEndpoint+" ")
		if !token {
			seen, allowed = seen+got, allowed+want
		}
		if got <= want {
			continue
		}
		line := fmt.Sprintf("%s: %d above the floor of %d", k, got-want, want)
		if token && k != keyToken {
			line += " (Entra metadata read while acquiring tokens; counted with tokens, not in the ratio)"
		} else {
			excess = true
		}
		rep.Excess = append(rep.Excess, line)
	}
	if allowed > 0 {
		rep.Ratio = float64(seen) / float64(allowed)
	}
	if excess {
		rep.Excess = append(rep.Excess, explainExcess(r, reconciles, f.syncs))
	}
	return rep
}

// explainExcess says what costs requests above the floor: 429s (each
// retried after its Retry-After), refused or early requests, and syncs
// beyond one per policy.
func explainExcess(r m365sim.RequestStats, reconciles, syncs int) string {
	var why []string
	if r.Throttled > 0 {
		why = append(why, fmt.Sprintf("%d answers were 429 (Microsoft throttling), each retried after its Retry-After", r.Throttled))
	}
	if r.Unattributed > 0 {
		why = append(why, fmt.Sprintf("%d requests were refused before a tenant was known (bad or missing token)", r.Unattributed))
	}
	if r.EarlyRequests > 0 {
		why = append(why, fmt.Sprintf("%d requests came before a Retry-After had passed", r.EarlyRequests))
	}
	if reconciles > syncs {
		why = append(why, fmt.Sprintf("%d reconciles for %d policies: each extra one syncs again "+
			"(a policy's interval, default 15m, elapsed within the phase, or a retry)", reconciles, syncs))
	}
	if len(why) == 0 {
		return "unexplained: no 429, no refused or early request, no reconcile beyond one per policy"
	}
	return strings.Join(why, "; ")
}

// routeCounts keeps the fine-grained keys ("<endpoint> <METHOD> <route>").
func routeCounts(c map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range c {
		if strings.Count(k, " ") == 2 {
			out[k] = v
		}
	}
	return out
}

// keysOf returns the keys of every map, sorted, once each.
func keysOf(ms ...map[string]int) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
