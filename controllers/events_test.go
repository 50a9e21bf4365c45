package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// fakeRecorder keeps "type reason: note" lines.
type fakeRecorder struct{ got []string }

func (f *fakeRecorder) Eventf(_ runtime.Object, _ runtime.Object, eventType, reason, _, note string, args ...interface{}) {
	f.got = append(f.got, fmt.Sprintf("%s %s: %s", eventType, reason, fmt.Sprintf(note, args...)))
}

func (f *fakeRecorder) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, eventType, reason, action, note string, args ...interface{}) {
	f.Eventf(regarding, related, eventType, reason, action, note, args...)
}

// events returns the "type reason: note" lines of one reason: those the
// recorder posted, then the announcements the reconciler created.
func (fc *fakeCluster) events(reason string) []string {
	fc.t.Helper()
	out := fc.rec.reasons(reason)
	var list eventsv1.EventList
	if err := fc.c.List(context.Background(), &list); err != nil {
		fc.t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Reason == reason {
			out = append(out, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Note))
		}
	}
	return out
}

// reasons returns the lines of one reason.
func (f *fakeRecorder) reasons(reason string) []string {
	var out []string
	for _, line := range f.got {
		if strings.Contains(line, " "+reason+": ") {
			out = append(out, line)
		}
	}
	return out
}

func TestFlushEvents(t *testing.T) {
	ready := func(reason string) []metav1.Condition {
		return []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason, Message: "because"}}
	}
	cases := map[string]struct {
		reason      string
		queued      []eventNote
		before, now []metav1.Condition
		want        []string
	}{
		"notes of one reason are joined": {
			reason: "the events API keeps only the first note of a series: two drifts of one run must both be told",
			queued: []eventNote{{eventWarning, v1.EventDriftDetected, "A changed"}, {eventNormal, v1.EventDriftCorrected, "A set back"}, {eventWarning, v1.EventDriftDetected, "B changed"}},
			want:   []string{"Warning DriftDetected: A changed; B changed", "Normal DriftCorrected: A set back"},
		},
		"a new Ready reason worth telling becomes an Event": {
			reason: "losing the tenant to another policy is announced once, when it happens",
			before: nil, now: ready(v1.ReasonConflictLost),
			want: []string{"Warning Conflict: because"},
		},
		"an unchanged Ready reason is not repeated": {
			reason: "a policy that stays throttled does not emit an Event at every retry",
			before: ready(v1.ReasonThrottled), now: ready(v1.ReasonThrottled),
		},
		"authentication failure": {
			reason: "a refused credential is a Warning",
			before: ready(v1.ReasonSucceeded), now: ready(v1.ReasonAuthenticationFailed),
			want: []string{"Warning AuthenticationFailed: because"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &fakeRecorder{}
			r := &TenantPurchasePolicyReconciler{Recorder: rec}
			p := &v1.TenantPurchasePolicy{}
			p.Status.Conditions = tc.now
			base := p.DeepCopy()
			base.Status.Conditions = tc.before
			s := &syncState{policy: p, base: base, events: tc.queued}
			r.flushEvents(s, outcome{})
			if diff := cmp.Diff(tc.want, rec.got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
