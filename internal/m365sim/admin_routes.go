package m365sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// faultAdminRoutes adds the admin routes of the misbehaviour toolkit:
//
//	GET    /_sim/traffic                                {latency, latencyJitter, throttle{rate, burst}, chaos{errorRate, dropRate, retryAfter}}
//	PUT    /_sim/traffic                                change any of them (durations "150ms" or nanoseconds)
//	GET    /_sim/requests                               RequestStats of the whole fleet
//	DELETE /_sim/requests                               reset every tenant's request log
//	GET    /_sim/leak-sink                              LeakSink {url, requests}
//	DELETE /_sim/leak-sink                              forget what reached the sink
//	POST   /_sim/tenants/{tid}/subscriptions/{sid}/advance       {to?} → Subscription
//	POST   /_sim/tenants/{tid}/subscriptions/{sid}/fail-payment  {status?} → Subscription
func (s *Server) faultAdminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/traffic", s.adminGetTraffic)
	mux.HandleFunc("PUT /_sim/traffic", s.adminPutTraffic)
	mux.HandleFunc("GET /_sim/requests", s.adminRequestStats)
	mux.HandleFunc("DELETE /_sim/requests", s.adminResetAllRequests)
	mux.HandleFunc("GET /_sim/leak-sink", s.adminGetLeakSink)
	mux.HandleFunc("DELETE /_sim/leak-sink", func(w http.ResponseWriter, _ *http.Request) {
		s.ResetLeakSink()
		w.WriteHeader(http.StatusNoContent)
	})
	const sub = "/_sim/tenants/{tid}/subscriptions/{sid}"
	mux.HandleFunc("POST "+sub+"/advance", s.adminSubscriptionWith("to", true, s.AdvanceSubscription))
	mux.HandleFunc("POST "+sub+"/fail-payment", s.adminSubscriptionWith("status", true, s.FailPayment))
}

// decodeOptionalBody is decodeBody that accepts an empty body.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := readLimited(r.Body)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		adminError(w, fmt.Errorf("%w: body: %v", ErrInvalid, err))
		return false
	}
	return true
}

// durationField is a duration in an admin request: a string ("250ms") or
// nanoseconds, absent = unchanged.
type durationField struct {
	raw json.RawMessage
	dst *time.Duration
}

func parseDurations(fields ...durationField) error {
	for _, f := range fields {
		if len(f.raw) == 0 {
			continue
		}
		d, err := parseLatency(f.raw)
		if err != nil {
			return err
		}
		*f.dst = d
	}
	return nil
}

// productRequest accepts replicationLag as a duration string or nanoseconds.
type productRequest struct {
	Product
	ReplicationLag json.RawMessage `json:"replicationLag,omitempty"`
}

func (p productRequest) product() (Product, error) {
	out := p.Product
	return out, parseDurations(durationField{p.ReplicationLag, &out.ReplicationLag})
}
