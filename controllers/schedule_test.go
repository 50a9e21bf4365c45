package controllers

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

func TestNextRun(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	interval := 10 * time.Minute
	cases := map[string]struct {
		reason   string
		interval time.Duration
		wakeAt   []time.Time
		// min and max bound the answer (equal when no jitter applies).
		min, max time.Duration
	}{
		"interval with jitter": {
			reason:   "periodic runs spread over interval .. interval+10%",
			interval: interval, min: interval, max: interval + interval/10,
		},
		"no interval": {
			reason: "an unset interval falls back to 15m, jittered",
			min:    15 * time.Minute, max: 15*time.Minute + 90*time.Second,
		},
		"earlier wake-up": {
			reason:   "a rule expiring before the next periodic run wakes the policy exactly then",
			interval: interval, wakeAt: []time.Time{now.Add(time.Hour), now.Add(90 * time.Second), now.Add(5 * time.Minute)},
			min: 90 * time.Second, max: 90 * time.Second,
		},
		"wake-up after interval": {
			reason:   "a wake-up later than the jittered interval does not delay the periodic run",
			interval: interval, wakeAt: []time.Time{now.Add(time.Hour)},
			min: interval, max: interval + interval/10,
		},
		"wake-up in the past": {
			reason:   "a time already passed is ignored (the run handling it is this one)",
			interval: interval, wakeAt: []time.Time{now.Add(-time.Minute), now},
			min: interval, max: interval + interval/10,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				got := nextRun(tc.interval, now, tc.wakeAt)
				if got < tc.min || got > tc.max {
					t.Fatalf("%s: nextRun = %s, want within [%s, %s]", tc.reason, got, tc.min, tc.max)
				}
				seen[got] = true
			}
			if tc.min != tc.max && len(seen) < 2 {
				t.Errorf("%s: 200 runs all gave the same delay: no jitter", tc.reason)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	transient := &m365.Error{Kind: m365.Transient, Op: "list products", StatusCode: 503}
	cases := map[string]struct {
		reason    string
		err       error
		suspended bool
		wakeAt    []time.Time
		want      reconcile.Result
		wantErr   bool
		// jittered: RequeueAfter must lie within interval .. interval+10%.
		jittered bool
	}{
		"suspended": {
			reason: "a suspended policy is not requeued; a spec change wakes it", suspended: true,
			want: reconcile.Result{},
		},
		"throttled": {
			reason: "Microsoft's Retry-After (plus a margin) decides, no backoff on top",
			err:    &waitError{after: 30 * time.Second, err: errors.New("429")},
			want:   reconcile.Result{RequeueAfter: 31 * time.Second},
		},
		"throttled beyond interval": {
			reason: "a Retry-After longer than the policy's interval (here 1h) is waited for at most interval, then the run asks again",
			err:    &waitError{after: 100000000 * time.Second, err: errors.New("429")},
			want:   reconcile.Result{RequeueAfter: time.Hour + time.Second},
		},
		"throttled with Retry-After 0": {
			reason: "a service answering 429 with Retry-After: 0 must not turn the policy into a tight loop",
			err:    &waitError{after: 0, err: errors.New("429")},
			want:   reconcile.Result{RequeueAfter: minThrottleWait},
		},
		"transient": {
			reason: "a transient error goes back to the rate limiter (backoff from 1s)",
			err:    transient, wantErr: true,
		},
		"stalled": {
			reason: "a stalled policy re-checks at interval: the Secret may appear",
			err:    stalled(v1.ReasonSecretNotFound, "missing"), jittered: true,
		},
		"converged": {
			reason: "a converged policy runs again at interval", jittered: true,
		},
		"rule expiry": {
			reason: "a rule expiring first brings the next run forward",
			wakeAt: []time.Time{now.Add(time.Minute)},
			want:   reconcile.Result{RequeueAfter: time.Minute},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{Spec: v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Interval: metav1.Duration{Duration: time.Hour}}}}
			s := &syncState{policy: p, now: now, err: tc.err, suspended: tc.suspended, wakeAt: tc.wakeAt}
			got, err := schedule(s, computeOutcome(s))
			if (err != nil) != tc.wantErr {
				t.Fatalf("%s: err = %v, want error %v", tc.reason, err, tc.wantErr)
			}
			if tc.jittered {
				if got.RequeueAfter < time.Hour || got.RequeueAfter > time.Hour+6*time.Minute {
					t.Errorf("%s: RequeueAfter = %s, want within [1h, 1h6m]", tc.reason, got.RequeueAfter)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nresult (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
