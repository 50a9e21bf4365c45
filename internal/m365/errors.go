package m365

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	// Redirected: the service answered 3xx (StatusCode). The redirect was not
	// followed (no token, credential or PUT body went to the Location); Reason
	// names the Location's scheme and host, never its path or query. A gateway
	// in maintenance or a proxy: retry with backoff, and say so if it lasts.
	Redirected Kind = "Redirected"
	// InvalidResponse: a 2xx answer that cannot be used: larger than
	// MaxResponseBytes, not the expected JSON, or paging that leaves the
	// endpoint's origin, repeats or does not end. Retry with backoff; never
	// treat it as an empty answer.
	InvalidResponse Kind = "InvalidResponse"
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

// FromResponse turns a non-2xx response into an *Error. body is the response
// body (already read). Code and Reason are what DescribeErrorBody makes of
// it: Microsoft's own code and message, or a fixed description of anything
// else, with the request's bearer token and every string in secrets removed.
func FromResponse(op string, resp *http.Response, body []byte, now time.Time, secrets ...string) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode}
	if resp.Request != nil {
		e.CorrelationID = resp.Request.Header.Get("x-ms-correlation-id")
		secrets = append(secrets[:len(secrets):len(secrets)], bearerToken(resp.Request))
	}
	e.Code, e.Reason = DescribeErrorBody(body, resp.Header.Get("Content-Type"), secrets...)
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

// bearerToken is the token the request carried, "" if none.
func bearerToken(req *http.Request) string {
	v := req.Header.Get("Authorization")
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
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
