package m365

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind says what the reconciler can do about an error.
type Kind string

const (
	// Throttled: wait RetryAfter, then try again.
	Throttled Kind = "Throttled"
	// Unauthorized: the credential was refused (401, invalid_client...). A person must act.
	Unauthorized Kind = "Unauthorized"
	// Forbidden: authenticated but not allowed (403). A person must act.
	Forbidden Kind = "Forbidden"
	// NotFound: the object does not exist, e.g. an unknown product ID.
	NotFound Kind = "NotFound"
	// BadRequest: Microsoft refused the request as invalid; resending cannot help.
	BadRequest Kind = "BadRequest"
	// Transient: 5xx, timeouts, resets; retry with backoff.
	Transient Kind = "Transient"
)

// Error is a failed call to a Microsoft service.
type Error struct {
	Kind Kind
	// Op names the call, e.g. "list products".
	Op string
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Code and Reason are Microsoft's errorCode/reason (or error/error_description).
	Code   string
	Reason string
	// RetryAfter is how long to wait before the next request (Throttled only).
	RetryAfter time.Duration
	// CorrelationID is the x-ms-correlation-id sent with the request.
	CorrelationID string
	// Err is the underlying transport error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Op, e.Kind)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Kind == Throttled && e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter.Round(time.Second))
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.CorrelationID != "" {
		fmt.Fprintf(&b, " [correlation %s]", e.CorrelationID)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or "" if none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// AsError returns the first *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// RetryAfterOf returns how long err asks the caller to wait (0 if it does not).
func RetryAfterOf(err error) time.Duration {
	if e, ok := AsError(err); ok && e.Kind == Throttled {
		return e.RetryAfter
	}
	return 0
}

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

// DefaultRetryAfter is used for a 429 that carries no usable Retry-After.
const DefaultRetryAfter = 10 * time.Second

// throttleWait tells whether resp asks the caller to wait, and how long: a
// 429 always (DefaultRetryAfter when Retry-After is missing or unreadable), a
// 503 when it carries a Retry-After. The error mapping and the gate share it,
// so the policy and every other call of the tenant wait alike.
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

// FromResponse turns a non-2xx response into an *Error. body is the response
// body (already read); Microsoft's {"errorCode","reason"}, Graph's
// {"error":{"code","message"}} and Entra's {"error","error_description"} are
// understood.
func FromResponse(op string, resp *http.Response, body []byte, now time.Time) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode, CorrelationID: resp.Request.Header.Get("x-ms-correlation-id")}
	e.Code, e.Reason = decodeErrorBody(body)
	if d, ok := throttleWait(resp, now); ok {
		e.Kind, e.RetryAfter = Throttled, d
		return e
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind = Unauthorized
	case resp.StatusCode == http.StatusForbidden:
		e.Kind = Forbidden
	case resp.StatusCode == http.StatusNotFound:
		e.Kind = NotFound
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		e.Kind = Transient
	default:
		e.Kind = BadRequest
	}
	return e
}

func decodeErrorBody(body []byte) (code, reason string) {
	var v struct {
		ErrorCode        string          `json:"errorCode"`
		Reason           string          `json:"reason"`
		Message          string          `json:"message"`
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", strings.TrimSpace(truncate(string(body), 256))
	}
	code, reason = v.ErrorCode, v.Reason
	if reason == "" {
		reason = v.Message
	}
	if len(v.Error) > 0 {
		var s string
		var obj struct{ Code, Message string }
		if json.Unmarshal(v.Error, &s) == nil {
			code, reason = s, v.ErrorDescription
		} else if json.Unmarshal(v.Error, &obj) == nil {
			code, reason = obj.Code, obj.Message
		}
	}
	return code, truncate(reason, 512)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FromTransport wraps an error from http.Client.Do: context cancellation is
// returned unchanged, a gate refusal keeps its kind, everything else (timeouts,
// resets, refused connections) is Transient.
func FromTransport(op string, err error) error {
	if e, ok := AsError(err); ok {
		cp := *e
		cp.Op = op
		return &cp
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ne net.Error
	reason := "connection failed"
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		reason = "timed out"
	}
	return &Error{Op: op, Kind: Transient, Reason: reason, Err: err}
}
