package m365

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds of every wait a Microsoft answer can impose ([1 s, min(interval,
// 1 h)]; docs/decisions.md, "Retry-After is obeyed and clamped"). The clients know only the hour;
// the reconciler applies the policy's interval with ClampRetryAfter.
const (
	// MinRetryAfter is the shortest wait: a Retry-After of 0 or a date in the
	// past never turns into a tight loop.
	MinRetryAfter = time.Second
	// MaxRetryAfter is the longest wait: a Retry-After of 100000000 s (or a
	// date years ahead) cannot hold a tenant until the controller restarts.
	MaxRetryAfter = time.Hour
)

// DefaultRetryAfter is used for a 429 that carries no usable Retry-After.
const DefaultRetryAfter = 10 * time.Second

// ClampRetryAfter bounds d to [MinRetryAfter, min(limit, MaxRetryAfter)]. A
// limit <= 0 means MaxRetryAfter; a limit below MinRetryAfter still waits
// MinRetryAfter. The reconciler passes the policy's interval as limit.
func ClampRetryAfter(d, limit time.Duration) time.Duration {
	upper := MaxRetryAfter
	if limit > 0 && limit < upper {
		upper = max(limit, MinRetryAfter)
	}
	return min(max(d, MinRetryAfter), upper)
}

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or an
// HTTP date) and returns the wait clamped to [MinRetryAfter, MaxRetryAfter].
// It never overflows: delay-seconds beyond the cap, however many digits,
// saturate before they are turned into a time.Duration. ok is false when v
// is empty or neither form (a sign, a fraction, a unit).
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		return ClampRetryAfter(delaySeconds(v), 0), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return ClampRetryAfter(t.Sub(now), 0), true // Sub saturates
	}
	return 0, false
}

// delaySeconds turns a string of digits into a duration, saturating at
// MaxRetryAfter (so no multiplication can overflow).
func delaySeconds(digits string) time.Duration {
	const capSeconds = uint64(MaxRetryAfter / time.Second)
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > capSeconds { // the only possible error is ErrRange
		return MaxRetryAfter
	}
	return time.Duration(n) * time.Second
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// throttleWait tells whether resp asks the caller to wait, and how long: a
// 429 always (DefaultRetryAfter when Retry-After is missing or unreadable), a
// 503 when it carries a Retry-After. The wait is within [MinRetryAfter,
// MaxRetryAfter]. The error mapping and the gate share it, so the policy and
// every other call of the tenant wait alike.
func throttleWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	header := resp.Header.Get("Retry-After")
	if resp.StatusCode != http.StatusTooManyRequests && (resp.StatusCode != http.StatusServiceUnavailable || header == "") {
		return 0, false
	}
	if d, ok := ParseRetryAfter(header, now); ok {
		return d, true
	}
	return DefaultRetryAfter, true
}
