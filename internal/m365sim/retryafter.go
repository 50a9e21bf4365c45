package m365sim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds the deadlines the simulator remembers: a Retry-After
// of 9,200,000,000 seconds would overflow time.Duration, and anything this
// long means "not in this test's lifetime" anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// retryAfterDeadline reads a Retry-After value the way RFC 9110 defines it
// (delay-seconds or an HTTP date), without any client-side clamping, so the
// request log can tell when a client came back too early. It never
// overflows: delays beyond maxRetryAfter saturate.
func retryAfterDeadline(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(maxRetryAfter/time.Second) {
			return now.Add(maxRetryAfter), true
		}
		return now.Add(time.Duration(n) * time.Second), true
	} else if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return now.Add(maxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
