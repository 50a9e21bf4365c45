package m365sim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// limiterKey names a throttling bucket of a tenant: Microsoft throttles per
// app and tenant, and each service on its own.
type limiterKey struct{ app, endpoint string }

type limiter struct {
	*rate.Limiter
	gen uint64
}

// limiter returns the tenant's bucket for key under the current settings.
func (t *tenant) limiter(key limiterKey, st *trafficState) *rate.Limiter {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.limiters[key]; ok && l.gen == st.gen {
		return l.Limiter
	}
	if t.limiters == nil {
		t.limiters = map[limiterKey]*limiter{}
	}
	l := &limiter{Limiter: rate.NewLimiter(rate.Limit(st.Throttle.Rate), st.Throttle.Burst), gen: st.gen} // starts full
	t.limiters[key] = l
	return l.Limiter
}

// throttle takes a token from the call's bucket; when there is none it
// answers 429 with Retry-After (seconds until the next token, rounded up, at
// least 1) in the service's error format and reports true.
func (s *Server) throttle(w http.ResponseWriter, c *call) bool {
	st := s.traffic.Load()
	if st.Throttle.Rate <= 0 {
		return false
	}
	now := s.now()
	lim := c.tenant.limiter(limiterKey{app: lower(c.caller), endpoint: c.endpoint}, st)
	res := lim.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	if wait == 0 {
		return false
	}
	res.CancelAt(now)
	c.bucketThrottled = true
	secs := retryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeThrottled(w, c.endpoint, secs)
	return true
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int64 {
	return max(1, int64(math.Ceil(wait.Seconds())))
}

// writeThrottled answers 429 as each service does when an app exceeds its
// limit: Graph as in Microsoft's throttling guidance, the licensing API in its
// {"errorCode","reason"} shape (INFERRED: its limits are not documented) and
// Entra with temporarily_unavailable.
func writeThrottled(w http.ResponseWriter, ep string, secs int64) {
	switch ep {
	case EndpointGraph:
		inner := graphInnerError(w)
		inner["code"], inner["message"], inner["status"] = "429", "Please retry after", "429"
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
			"code": "TooManyRequests", "message": "Please retry again later.", "innerError": inner}})
	default:
		styleOf(ep).write(w, http.StatusTooManyRequests, codeForStatus(ep, http.StatusTooManyRequests),
			fmt.Sprintf("Too many requests. Rate limit is exceeded. Try again in %d seconds.", secs))
	}
}
