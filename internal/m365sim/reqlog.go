package m365sim

import (
	"maps"
	"net/http"
	"strings"
	"time"
	"unique"
)

// RequestLog is what a tenant's requests to the simulated services looked
// like. Admin API calls are never recorded.
//
// Counts has two keys per request:
//   - "<endpoint> <METHOD>", e.g. "licensing GET", "licensing PUT",
//     "graph GET", "authority POST", "authority GET";
//   - "<endpoint> <METHOD> <route>" with route one of
//     authority: "openid-configuration", "keys", "token", "devicecode";
//     licensing: "policies", "policy", "products", "product", "offerType";
//     graph: "subscriptions", "subscription", "subscribedSkus", "user",
//     "users-list" (listing all users; the controller should never do it),
//     "delegatedAdminCustomers", "authorizationPolicy", "appsAndServices";
//     any endpoint: "other" for unknown paths.
type RequestLog struct {
	Counts  map[string]int `json:"counts"`
	Entries []RequestEntry `json:"entries"`
	// EarlyRequests counts requests that arrived before a Retry-After this
	// simulator had sent to the tenant for that endpoint had passed (from an
	// injected fault or from throttling).
	EarlyRequests int `json:"earlyRequests"`
	// Throttled counts 429 answers (throttling and injected faults).
	Throttled int `json:"throttled"`
	// Failed counts, per "<endpoint> <METHOD>", the requests not answered
	// 2xx (dropped connections included): a client's retries of a write
	// are at most these.
	Failed map[string]int `json:"failed"`
}

// RequestEntry is one logged request.
type RequestEntry struct {
	Time     time.Time `json:"time"`
	Endpoint string    `json:"endpoint"`
	Method   string    `json:"method"`
	Path     string    `json:"path"`
	Query    string    `json:"query,omitempty"`
	// Route is the fine-grained route name (see RequestLog).
	Route string `json:"route"`
	// Status is the answer's status; 0 when the connection was dropped.
	Status int `json:"status"`
	// Early: sent before an earlier Retry-After for this tenant and endpoint passed.
	Early bool `json:"early"`
	// Caller is the client ID (from the token, or the token request's form).
	Caller string `json:"caller,omitempty"`
	// CorrelationID is the request's x-ms-correlation-id ("" when absent).
	CorrelationID string `json:"correlationId,omitempty"`
}

type requestLog struct {
	counts    map[string]int
	failed    map[string]int
	entries   []RequestEntry
	early     int
	throttled int
}

// Requests returns a copy of a tenant's request log (empty for unknown tenants).
func (s *Server) Requests(tenantID string) RequestLog {
	out := RequestLog{Counts: map[string]int{}, Entries: []RequestEntry{}, Failed: map[string]int{}}
	_ = s.withTenant(tenantID, func(t *tenant) error {
		maps.Copy(out.Counts, t.log.counts)
		maps.Copy(out.Failed, t.log.failed)
		out.Entries = append(out.Entries, t.log.entries...)
		out.EarlyRequests, out.Throttled = t.log.early, t.log.throttled
		return nil
	})
	return out
}

// ResetRequests empties a tenant's request log; remembered Retry-After
// deadlines stay.
func (s *Server) ResetRequests(tenantID string) {
	_ = s.withTenant(tenantID, func(t *tenant) error { t.log = requestLog{}; return nil })
}

// begin starts a log entry, deciding whether the request is early: sent
// before a Retry-After given for the tenant's endpoint (an injected fault) or
// to its app there (throttling) had passed.
func (t *tenant) begin(now time.Time, c *call, r *http.Request) *RequestEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	ep := c.endpoint
	return &RequestEntry{
		Time: now, Endpoint: ep, Method: intern(r.Method), Path: intern(r.URL.Path), Query: intern(r.URL.RawQuery),
		Route: routeName(ep, r.URL.Path), Early: t.throttled[ep].early(now) || t.throttled[bucketKey(c)].early(now),
		CorrelationID: r.Header.Get(correlationHeader),
	}
}

// retryWindow is a Retry-After this simulator answered, from the moment it
// was written until the deadline it named; a request within inFlight
// (Options.InFlight) of the answer is not early.
type retryWindow struct {
	since, until time.Time
	inFlight     time.Duration
}

func (w retryWindow) early(now time.Time) bool {
	return now.Before(w.until) && now.Sub(w.since) >= w.inFlight
}

// intern returns the canonical copy of a string the log repeats (methods,
// paths, queries, client IDs): 10,000 tenants' logs share them.
func intern(s string) string { return unique.Make(s).Value() }

// bucketKey names the Retry-After deadline of the call's throttling bucket.
func bucketKey(c *call) string { return c.endpoint + " " + lower(c.caller) }

// finish records the entry and remembers a Retry-After the answer carried.
func (t *tenant) finish(now time.Time, e *RequestEntry, c *call, rec *recorder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.Status, e.Caller = rec.status, intern(c.caller)
	if t.log.counts == nil {
		t.log.counts = map[string]int{}
	}
	t.log.counts[e.Endpoint+" "+e.Method]++
	t.log.counts[e.Endpoint+" "+e.Method+" "+e.Route]++
	if e.Early {
		t.log.early++
	}
	if rec.status == http.StatusTooManyRequests {
		t.log.throttled++
	}
	if rec.status < 200 || rec.status > 299 {
		if t.log.failed == nil {
			t.log.failed = map[string]int{}
		}
		t.log.failed[e.Endpoint+" "+e.Method]++
	}
	if len(t.log.entries) >= t.logCap {
		n := copy(t.log.entries, t.log.entries[max(1, t.logCap/10):])
		t.log.entries = t.log.entries[:n]
	}
	t.log.entries = append(t.log.entries, *e)
	if rec.status == http.StatusTooManyRequests || rec.status == http.StatusServiceUnavailable {
		key := e.Endpoint
		if c.bucketThrottled {
			key = bucketKey(c)
		}
		if until, ok := retryAfterDeadline(rec.Header().Get("Retry-After"), now); ok && until.After(t.throttled[key].until) {
			t.throttled[key] = retryWindow{since: now, until: until, inFlight: t.inFlight}
		}
	}
}

// routeName names the route of a path (see RequestLog).
func routeName(ep, path string) string {
	switch ep {
	case EndpointAuthority:
		for _, r := range []string{"openid-configuration", "keys", "token", "devicecode"} {
			if strings.HasSuffix(path, "/"+r) {
				return r
			}
		}
	case EndpointLicensing:
		rest := strings.TrimPrefix(path, "/v1.0/policies")
		p := strings.Split(strings.Trim(rest, "/"), "/")
		switch {
		case rest == "" || rest == "/":
			return "policies"
		case len(p) == 1:
			return "policy"
		case len(p) == 2 && p[1] == "products":
			return "products"
		case len(p) == 3 && p[1] == "products":
			return "product"
		case len(p) == 3 && p[1] == "offerTypes":
			return "offerType"
		}
	case EndpointGraph:
		if r, ok := graphResourceRoutes[path]; ok {
			return r
		}
		p := strings.Split(strings.Trim(strings.TrimPrefix(path, "/v1.0"), "/"), "/")
		switch {
		case len(p) == 2 && p[0] == "directory" && p[1] == "subscriptions":
			return "subscriptions"
		case len(p) == 3 && p[0] == "directory" && p[1] == "subscriptions":
			return "subscription"
		case len(p) == 1 && p[0] == "subscribedSkus":
			return "subscribedSkus"
		case len(p) == 1 && p[0] == "users":
			return "users-list"
		case len(p) == 2 && p[0] == "users":
			return "user"
		}
	}
	return "other"
}
