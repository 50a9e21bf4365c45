package controllers

import (
	"errors"
	"fmt"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// How a step reports. A step returns nil when it is done, or an error that
// stops the run:
//   - stalled(reason, ...): a person must act; Stalled, re-checked at interval;
//   - waiting(after, reason, ...): come back after a wait; Reconciling, no backoff;
//   - classify(err) for an error from Microsoft (it picks one of the above, or
//     leaves a transient error as is);
//   - any other error: transient, Reconciling, retried with backoff.
//
// A user error that must not stop the other products (an unknown product, a
// rejected value) is reported with syncState.softStall instead, and a
// product to try again soon with syncState.softRetry; computeOutcome turns
// all of it into the run's one outcome.

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

// softStall records a stall that does not stop the run: the remaining steps
// go on (every other product is enforced) and the run ends Stalled unless an
// error stopped it. The first soft stall of a run is the one reported.
func (s *syncState) softStall(reason, format string, args ...any) {
	if s.softErr == nil {
		s.softErr = stalled(reason, format, args...)
	}
}

// softRetry records a failure of one product that a retry soon may cure (a
// product Microsoft lists but cannot write yet): the run goes on, and ends
// transient (retried with backoff) unless an error stopped it. The first of
// a run is the one reported.
func (s *syncState) softRetry(err error) {
	if s.retryErr == nil {
		s.retryErr = err
	}
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

// waiting asks for the next run after a wait the controller chose itself,
// with the Ready and Reconciling reason to show meanwhile.
func waiting(after time.Duration, reason, format string, args ...any) error {
	return &waitError{after: after, reason: reason, err: fmt.Errorf(format, args...)}
}

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
