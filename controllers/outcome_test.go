package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// TestOutcome runs each way a run can end through computeOutcome and every
// reader of the outcome: the conditions, the next run, the metrics label, the
// finalizer release and the Events finish emits. They must tell one story.
func TestOutcome(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	throttled := classify(&m365.Error{Kind: m365.Throttled, Op: "list products", StatusCode: 429, RetryAfter: 30 * time.Second})
	transient := classify(&m365.Error{Kind: m365.Transient, Op: "set product", StatusCode: 503})
	refused := classify(&m365.Error{Kind: m365.Unauthorized, Op: "get token", StatusCode: 401, Code: "invalid_client"})
	secretMissing := stalled(v1.ReasonSecretNotFound, "Secret ns/app not found")
	unknown := stalled(v1.ReasonUnknownProduct, "the tenant has no product or offer type CFQ7TTC0ZZZ9")
	lost := stalled(v1.ReasonConflictLost, "tenant is enforced by team-a/contoso")
	claimWaitErr := waiting(claimWait, v1.ReasonWaitingForOlderPolicy, "waiting for the older TenantPurchasePolicy team-a/contoso")

	// next is when the policy runs next: after a fixed wait, at interval
	// (jittered), never (a spec change wakes it), or with backoff (the error
	// goes back to controller-runtime).
	type next struct {
		after             time.Duration
		interval, backoff bool
	}
	cases := map[string]struct {
		reason string
		// the run
		err, softErr    error
		suspended       bool
		deleting        bool
		deletionPolicy  v1.DeletionPolicy
		restoreAttempts int32
		readyBefore     metav1.ConditionStatus
		// what every reader makes of it
		want          map[string]string
		next          next
		label         string
		release       bool
		events        []string
		wantAttempts  int32
		wantInMessage string
	}{
		"succeeded": {
			reason: "every step ran: Ready, next run at interval",
			want:   map[string]string{"Ready": "True/Succeeded"}, next: next{interval: true}, label: "ready",
		},
		"soft stall": {
			reason:  "an unknown product stalls the run after every other product was enforced; re-checked at interval",
			softErr: unknown,
			want:    map[string]string{"Ready": "False/UnknownProduct", "Stalled": "True/UnknownProduct"}, next: next{interval: true}, label: "stalled",
		},
		"stalled": {
			reason: "a refused credential: a person must act; retrying sooner than interval cannot help",
			err:    refused,
			want:   map[string]string{"Ready": "False/AuthenticationFailed", "Stalled": "True/AuthenticationFailed"}, next: next{interval: true}, label: "stalled",
			events: []string{"Warning AuthenticationFailed: get token: Unauthorized (HTTP 401) invalid_client"},
		},
		"error wins over soft stall": {
			reason: "the error that stopped the run is what the run reports",
			err:    throttled, softErr: unknown,
			want: map[string]string{"Ready": "False/Throttled", "Reconciling": "True/Throttled"}, next: next{after: 31 * time.Second}, label: "throttled",
			events: []string{"Normal Throttled: Microsoft asked to wait 30s: list products: Throttled (HTTP 429); retry after 30s"},
		},
		"throttled": {
			reason: "Microsoft's Retry-After decides the next run, no backoff on top",
			err:    throttled,
			want:   map[string]string{"Ready": "False/Throttled", "Reconciling": "True/Throttled"}, next: next{after: 31 * time.Second}, label: "throttled",
			events:        []string{"Normal Throttled: Microsoft asked to wait 30s: list products: Throttled (HTTP 429); retry after 30s"},
			wantInMessage: "wait 30s",
		},
		"controller's own wait": {
			reason: "the first-claim wait is Reconciling with its own reason and counts as waiting, not throttled",
			err:    claimWaitErr,
			want:   map[string]string{"Ready": "False/WaitingForOlderPolicy", "Reconciling": "True/WaitingForOlderPolicy"}, next: next{after: minThrottleWait}, label: "waiting",
		},
		"transient": {
			reason: "a 5xx goes back to the rate limiter: backoff from 1s",
			err:    transient,
			want:   map[string]string{"Ready": "False/TransientError", "Reconciling": "True/TransientError"}, next: next{backoff: true}, label: "transient",
		},
		"suspended": {
			reason:    "suspend keeps Ready's status, says why, and waits for a spec change",
			suspended: true, readyBefore: metav1.ConditionTrue,
			want: map[string]string{"Ready": "True/Suspended"}, label: "suspended",
		},
		"deleted with Orphan": {
			reason:   "Orphan has nothing to do: the finalizer goes after the status write",
			deleting: true, deletionPolicy: v1.DeletionOrphan,
			want: map[string]string{"Ready": "False/Deleting"}, label: "deleting", release: true,
		},
		"deleted with Restore": {
			reason:   "Restore finished: the finalizer goes",
			deleting: true, deletionPolicy: v1.DeletionRestore,
			want: map[string]string{"Ready": "False/Deleting"}, label: "deleting", release: true,
		},
		"deleted while suspended": {
			reason:   "a suspended Restore policy makes no call: released, and a person is told the tenant was left alone",
			deleting: true, deletionPolicy: v1.DeletionRestore, suspended: true,
			want: map[string]string{"Ready": "False/Deleting"}, label: "deleting", release: true,
			events: []string{"Warning RestoreSkipped: policy is suspended: no calls to Microsoft, tenant left as it is"},
		},
		"deletion throttled": {
			reason:   "a throttled restore keeps the finalizer and comes back after Retry-After",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: throttled,
			want: map[string]string{"Ready": "False/Deleting", "Reconciling": "True/Throttled"}, next: next{after: 31 * time.Second}, label: "deleting",
			wantInMessage: "finalizer kept",
		},
		"deletion stalled": {
			reason:   "a refused credential keeps the finalizer with backoff, so the deletion finishes soon after the fix; it counts as an attempt Restore cannot make",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: refused,
			want: map[string]string{"Ready": "False/Deleting", "Stalled": "True/AuthenticationFailed"}, next: next{backoff: true}, label: "deleting",
			wantAttempts: 1, wantInMessage: "attempt 1 of 3 before Restore is given up; set deletionPolicy: Orphan to release now",
		},
		"deletion transient": {
			reason:   "a 5xx during restore keeps the finalizer, with backoff",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: transient,
			want: map[string]string{"Ready": "False/Deleting", "Reconciling": "True/TransientError"}, next: next{backoff: true}, label: "deleting",
		},
		"credentials missing, first attempt": {
			reason:   "a missing Secret is counted and retried: it may come back",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: secretMissing,
			want: map[string]string{"Ready": "False/Deleting", "Stalled": "True/SecretNotFound"}, next: next{backoff: true}, label: "deleting",
			wantAttempts: 1,
		},
		"credentials missing, third attempt": {
			reason:   "after 3 attempts without credentials Restore is impossible: released with RestoreSkipped",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: secretMissing, restoreAttempts: 2,
			want: map[string]string{"Ready": "False/Deleting"}, label: "deleting", release: true, wantAttempts: 3,
			events: []string{"Warning RestoreSkipped: Restore impossible for 3 attempts (SecretNotFound: Secret ns/app not found): tenant left as it is"},
		},
		"deletion of a policy that lost the tenant": {
			reason:   "restoring would fight the owner: released with RestoreSkipped",
			deleting: true, deletionPolicy: v1.DeletionRestore, err: lost,
			want: map[string]string{"Ready": "False/Deleting"}, label: "deleting", release: true,
			events: []string{"Warning RestoreSkipped: tenant is enforced by team-a/contoso: restoring would fight it, tenant left as it is"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Generation: 3},
				Spec: v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Interval: metav1.Duration{Duration: time.Hour}, DeletionPolicy: tc.deletionPolicy}}}
			if tc.readyBefore != "" {
				p.Status.Conditions = []metav1.Condition{{Type: v1.ReadyCondition, Status: tc.readyBefore, Reason: "Before"}}
			}
			p.Status.RestoreAttempts = tc.restoreAttempts
			s := &syncState{policy: p, base: p.DeepCopy(), now: now, err: tc.err, softErr: tc.softErr, suspended: tc.suspended, deleting: tc.deleting}

			o := computeOutcome(s)
			recordStatus(s, o)
			res, err := schedule(s, o)
			rec := &fakeRecorder{}
			(&TenantPurchasePolicyReconciler{Recorder: rec}).flushEvents(s, o)

			got := map[string]string{}
			for _, c := range p.Status.Conditions {
				if c.Type == v1.ReadyCondition || c.Type == v1.ReconcilingCondition || c.Type == v1.StalledCondition {
					got[c.Type] = string(c.Status) + "/" + c.Reason
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nconditions (-want +got):\n%s", tc.reason, diff)
			}
			switch {
			case tc.next.backoff:
				if err == nil || !errors.Is(err, tc.err) || res.RequeueAfter != 0 {
					t.Errorf("%s: want the error back for backoff, got %+v, %v", tc.reason, res, err)
				}
			case tc.next.interval:
				if err != nil || res.RequeueAfter < time.Hour || res.RequeueAfter > time.Hour+6*time.Minute {
					t.Errorf("%s: want the next run at interval (1h..1h6m), got %+v, %v", tc.reason, res, err)
				}
			default:
				if err != nil || res.RequeueAfter != tc.next.after {
					t.Errorf("%s: want the next run after %s, got %+v, %v", tc.reason, tc.next.after, res, err)
				}
			}
			if got := outcomeLabel(o); got != tc.label {
				t.Errorf("%s: metrics outcome %q, want %q", tc.reason, got, tc.label)
			}
			if o.releasesFinalizer() != tc.release {
				t.Errorf("%s: releases the finalizer = %v, want %v", tc.reason, o.releasesFinalizer(), tc.release)
			}
			if diff := cmp.Diff(tc.events, rec.got); diff != "" {
				t.Errorf("%s\nEvents (-want +got):\n%s", tc.reason, diff)
			}
			if p.Status.RestoreAttempts != max(tc.wantAttempts, tc.restoreAttempts) {
				t.Errorf("%s: status.restoreAttempts = %d, want %d", tc.reason, p.Status.RestoreAttempts, tc.wantAttempts)
			}
			ready, _ := readyCondition(p)
			if tc.wantInMessage != "" && !strings.Contains(ready.Message, tc.wantInMessage) {
				t.Errorf("%s: Ready message %q lacks %q", tc.reason, ready.Message, tc.wantInMessage)
			}
		})
	}
}

func readyCondition(p *v1.TenantPurchasePolicy) (metav1.Condition, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == v1.ReadyCondition {
			return c, true
		}
	}
	return metav1.Condition{}, false
}
