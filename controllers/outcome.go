package controllers

import (
	"fmt"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// outcomeKind is how a run ended.
type outcomeKind string

const (
	// outcomeSucceeded: every step ran. Ready=True; next run at interval.
	outcomeSucceeded outcomeKind = "succeeded"
	// outcomeStalled: a person must act. Ready=False, Stalled=True; re-checked
	// at interval (the Secret may appear).
	outcomeStalled outcomeKind = "stalled"
	// outcomeWaiting: Microsoft's Retry-After, or a wait the controller chose.
	// Ready=False, Reconciling=True; next run after the wait, no backoff.
	outcomeWaiting outcomeKind = "waiting"
	// outcomeTransient: a 5xx, a timeout, a failed Kubernetes call.
	// Ready=False, Reconciling=True; the error goes back for backoff.
	outcomeTransient outcomeKind = "transient"
	// outcomeSuspended: spec.suspend. Ready keeps its status; no next run
	// until the spec changes.
	outcomeSuspended outcomeKind = "suspended"
	// outcomeDeleted: deletionPolicy is done (or given up): Ready=False
	// reason Deleting, and the finalizer is released after the status write.
	outcomeDeleted outcomeKind = "deleted"
)

// outcome is the one verdict on a run. computeOutcome makes it from what the
// steps left in syncState; the conditions (setReadiness), the next run
// (schedule), the metrics outcome label (outcomeLabel), the RestoreSkipped
// Event and the finalizer release all read it, so they cannot disagree.
type outcome struct {
	kind outcomeKind
	// reason and message say why: Ready carries them, and so does Stalled or
	// Reconciling.
	reason, message string
	// retryAfter is how long a waiting run waits.
	retryAfter time.Duration
	// err is the error that decided the outcome (stalled, waiting,
	// transient, or a deletion kept by it).
	err error

	// deleting: the policy has a deletionTimestamp. Until it is deleted, Ready
	// says Deleting and any failure is retried with backoff (from 1 s), so a
	// person who fixes the cause sees the deletion finish soon.
	deleting bool
	// restoreSkipped is the note of the RestoreSkipped Warning when
	// deletionPolicy Restore is given up.
	restoreSkipped string
	// restoreBlocked: this deletion failed for a reason retrying cannot fix
	// (restoreBlocked); status.restoreAttempts counts such attempts.
	restoreBlocked bool
	// keptNote is the Ready message of a deletion whose failure keeps the
	// finalizer: the cause, the attempt, and how to release it now.
	keptNote string
}

// suspendedMessage is the Ready message of a suspended policy.
const suspendedMessage = "spec.suspend is true: no calls to Microsoft until it is set to false"

// computeOutcome decides how the run ended. An error that stopped the run
// wins over a product to retry soon (syncState.softRetry), which wins over a
// soft stall (syncState.softStall), which wins over success.
func computeOutcome(s *syncState) outcome {
	err := s.err
	for _, soft := range []error{s.retryErr, s.softErr} {
		if err == nil {
			err = soft
		}
	}
	switch {
	case s.deleting:
		return deletionOutcome(s, err)
	case s.suspended:
		return outcome{kind: outcomeSuspended, reason: v1.ReasonSuspended, message: suspendedMessage}
	case err == nil:
		return outcome{kind: outcomeSucceeded, reason: v1.ReasonSucceeded, message: readyMessage(s)}
	}
	return errorOutcome(err)
}

// errorOutcome is the outcome of a run that err stopped (or soft-stalled).
func errorOutcome(err error) outcome {
	if st, ok := asStalled(err); ok {
		return outcome{kind: outcomeStalled, reason: st.reason, message: st.message, err: err}
	}
	if w, ok := asWait(err); ok {
		o := outcome{kind: outcomeWaiting, retryAfter: w.after, err: err,
			reason: v1.ReasonThrottled, message: fmt.Sprintf("Microsoft asked to wait %s: %v", w.after.Round(time.Second), w.err)}
		if w.reason != "" {
			o.reason, o.message = w.reason, w.err.Error()
		}
		return o
	}
	return outcome{kind: outcomeTransient, reason: v1.ReasonTransientError, message: "retrying with backoff: " + err.Error(), err: err}
}

// deletionOutcome decides whether the finalizer goes. It goes when the
// delete steps finished (Restore done, or nothing to do: Orphan, Observe,
// suspended) and when Restore is impossible: another policy owns the tenant,
// the tenantID is not in lower case (checkTenantID), or maxRestoreAttempts
// attempts failed for a reason retrying cannot fix (restoreBlocked). Any
// other failure keeps it.
func deletionOutcome(s *syncState, err error) outcome {
	p := s.policy
	released := func(note, skipped string) outcome {
		return outcome{kind: outcomeDeleted, deleting: true, reason: v1.ReasonDeleting,
			message: "finalizer released: " + note, restoreSkipped: skipped}
	}
	if err == nil {
		switch {
		case !restores(p):
			return released("the tenant is left as it is", "")
		case s.suspended:
			const note = "policy is suspended: no calls to Microsoft, tenant left as it is"
			return released(note, note)
		}
		return released("adoption values restored", "")
	}
	if st, ok := asStalled(err); ok {
		switch st.reason {
		case v1.ReasonConflictLost:
			note := st.message + ": restoring would fight it, tenant left as it is"
			return released(note, note)
		case v1.ReasonTenantIDNotLowerCase:
			note := st.message + "; restoring could fight the tenant's owner, tenant left as it is"
			return released(note, note)
		}
	}
	o := errorOutcome(err)
	o.deleting, o.restoreBlocked = true, restoreBlocked(err)
	attempts := p.Status.RestoreAttempts + 1
	switch {
	case o.restoreBlocked && attempts >= maxRestoreAttempts:
		note := fmt.Sprintf("Restore impossible for %d attempts (%v): tenant left as it is", attempts, err)
		o = released(note, note)
		o.restoreBlocked = true
	case o.restoreBlocked:
		o.keptNote = fmt.Sprintf("deletionPolicy Restore could not finish, finalizer kept: %v; attempt %d of %d before Restore is given up; %s", err, attempts, maxRestoreAttempts, orphanHint)
	default:
		o.keptNote = fmt.Sprintf("deletionPolicy Restore could not finish, finalizer kept: %v; retrying; %s", err, orphanHint)
	}
	return o
}

// releasesFinalizer tells whether finish removes the finalizer.
func (o outcome) releasesFinalizer() bool { return o.kind == outcomeDeleted }

// ready returns the reason and message of the Ready condition: the
// outcome's own, except for a deletion a failure keeps waiting.
func (o outcome) ready() (reason, message string) {
	if o.deleting && o.kind != outcomeDeleted {
		return v1.ReasonDeleting, o.keptNote
	}
	return o.reason, o.message
}
