package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const (
	eventNormal  = "Normal"
	eventWarning = "Warning"
	eventAction  = "Reconcile"
	// maxEventNote is the events.k8s.io limit on an Event's note.
	maxEventNote = 1024
)

// eventNote is one Event a step wants to emit.
type eventNote struct{ eventType, reason, note string }

// event queues an Event about the policy; finish emits the queue. Messages
// never carry credentials: they are built from product IDs, values and typed
// Microsoft errors.
func (s *syncState) event(eventType, reason, format string, args ...any) {
	s.events = append(s.events, eventNote{eventType, reason, fmt.Sprintf(format, args...)})
}

// flushEvents emits the queued Events, one per type and reason with the notes
// joined: the events API merges Events of one reason about one object version
// into a series that keeps only the first note, which would lose the second
// drift or purchase of a run. It also reports what the outcome says a person
// should hear about: a change of the Ready reason to throttled,
// authentication failed, forbidden or a lost conflict, and a Restore given up.
func (r *TenantPurchasePolicyReconciler) flushEvents(s *syncState, o outcome) {
	before, after := meta.FindStatusCondition(s.base.Status.Conditions, v1.ReadyCondition), meta.FindStatusCondition(s.policy.Status.Conditions, v1.ReadyCondition)
	if after != nil && (before == nil || before.Reason != after.Reason) {
		switch after.Reason {
		case v1.ReasonThrottled:
			s.event(eventNormal, v1.EventThrottled, "%s", after.Message)
		case v1.ReasonAuthenticationFailed, v1.ReasonForbidden:
			s.event(eventWarning, v1.EventAuthFailed, "%s", after.Message)
		case v1.ReasonConflictLost:
			s.event(eventWarning, v1.EventConflict, "%s", after.Message)
		}
	}
	if o.restoreSkipped != "" {
		s.event(eventWarning, v1.EventRestoreSkipped, "%s", o.restoreSkipped)
	}
	for _, e := range joinEvents(s.events) {
		r.emit(s.policy, e.eventType, e.reason, e.note)
	}
	s.events = nil
}

// joinEvents merges the notes of the Events of one type and reason, in the
// order they were first queued, each note cut to the events API's limit.
func joinEvents(events []eventNote) []eventNote {
	type key struct{ eventType, reason string }
	var order []key
	notes := map[key][]string{}
	for _, e := range events {
		k := key{e.eventType, e.reason}
		if _, seen := notes[k]; !seen {
			order = append(order, k)
		}
		notes[k] = append(notes[k], e.note)
	}
	out := make([]eventNote, 0, len(order))
	for _, k := range order {
		out = append(out, eventNote{k.eventType, k.reason, truncate(strings.Join(notes[k], "; "), maxEventNote)})
	}
	return out
}

// emit records one Event on the policy.
func (r *TenantPurchasePolicyReconciler) emit(p *v1.TenantPurchasePolicy, eventType, reason, note string) {
	if r.Recorder == nil {
		return
	}
	r.Recorder.Eventf(p, nil, eventType, reason, eventAction, "%s", note)
}
