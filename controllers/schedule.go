package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// jitterFactor spreads periodic runs of a fleet over up to 10% of interval.
const jitterFactor = 0.1

// schedule decides when the policy runs next, from the outcome: never while
// suspended or once deleted (a spec change wakes it); after the wait when
// waiting (Microsoft's Retry-After, or the controller's own, never longer
// than interval or an hour); with
// exponential backoff (the controller's rate limiter, from 1s) on transient
// errors, and on any failure of a deletion; otherwise at interval with
// jitter, or earlier at the next rule expiry or refund warning. A stalled
// policy re-checks at interval too.
func schedule(s *syncState, o outcome) (reconcile.Result, error) {
	switch {
	case o.kind == outcomeSuspended, o.kind == outcomeDeleted:
		return reconcile.Result{}, nil
	case o.kind == outcomeWaiting:
		return reconcile.Result{RequeueAfter: throttleRequeue(m365.ClampRetryAfter(o.retryAfter, s.policy.Spec.Interval.Duration))}, nil
	case o.kind == outcomeTransient, o.deleting:
		return reconcile.Result{}, o.err
	}
	return reconcile.Result{RequeueAfter: nextRun(s.policy.Spec.Interval.Duration, s.now, s.wakeAt)}, nil
}

// minThrottleWait keeps a service that answers 429 with "Retry-After: 0"
// from turning the policy into a tight loop.
const minThrottleWait = 5 * time.Second

// throttleRequeue is the wait asked for plus a second, at least minThrottleWait.
func throttleRequeue(after time.Duration) time.Duration {
	return max(after+time.Second, minThrottleWait)
}

// nextRun is interval with jitter, or sooner if a wake-up time comes first.
func nextRun(interval time.Duration, now time.Time, wakeAt []time.Time) time.Duration {
	if interval <= 0 {
		interval = 15 * time.Minute
	}
	next := wait.Jitter(interval, jitterFactor)
	for _, t := range wakeAt {
		if d := t.Sub(now); d > 0 && d < next {
			next = d
		}
	}
	return next
}
