package controllers

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// stalledError means a person must act (bad credentials, missing permission,
// unknown product, lost conflict): the policy is marked Stalled with reason
// and re-checked at spec.interval, because retrying sooner cannot help.
type stalledError struct {
	reason  string
	message string
}

func (e *stalledError) Error() string { return e.reason + ": " + e.message }

func stalled(reason, format string, args ...any) error {
	return &stalledError{reason: reason, message: fmt.Sprintf(format, args...)}
}

// waitError means the run must wait before it can go on: Reconciling, next
// run after the wait, no backoff on top. Without a reason it is Microsoft's
// Retry-After (reason Throttled).
type waitError struct {
	after  time.Duration
	err    error
	reason string
}

func (e *waitError) Error() string { return e.err.Error() }
func (e *waitError) Unwrap() error { return e.err }

// classify turns an error from Microsoft into what the reconciler does about
// it: a stalledError for what a person must fix, a waitError for throttling,
// and the error itself (transient, retried with backoff) otherwise.
func classify(err error) error {
	e, ok := m365.AsError(err)
	if !ok {
		return err
	}
	switch e.Kind {
	case m365.Throttled:
		return &waitError{after: e.RetryAfter, err: err}
	case m365.Unauthorized:
		return stalled(v1.ReasonAuthenticationFailed, "%s", e.Error())
	case m365.Forbidden:
		return stalled(v1.ReasonForbidden, "%s", e.Error())
	case m365.NotFound, m365.BadRequest:
		return stalled(v1.ReasonRejected, "%s", e.Error())
	default:
		return err
	}
}

func asStalled(err error) (*stalledError, bool) {
	var s *stalledError
	return s, errors.As(err, &s)
}

func asWait(err error) (*waitError, bool) {
	var w *waitError
	return w, errors.As(err, &w)
}
