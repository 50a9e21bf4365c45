package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// outcomeProgressing: a set's children are being created or have not all
// synced yet. Ready=False, Reconciling=True; their status changes wake the set.
const outcomeProgressing outcomeKind = "progressing"

// childState is how the set counts one child.
type childState int

const (
	childReady childState = iota
	childProgressing
	childStalled
	childSuspended
)

// fleetReport is what the set's children add up to, read from the cache.
type fleetReport struct {
	summary     v1.SetSummary
	progressing int
	// notReady are every child that is not Ready (stalled first, then by
	// name), and the tenants whose child could not be written.
	notReady []v1.ChildReport
	deadline *v1.RefundDeadline
}

// summarizeFleet counts the desired children as last seen: ready, drifted,
// stalled, in conflict, suspended, their self-service subscriptions and
// the soonest full-refund deadline still open. It reads status only (the
// cache's objects), so it costs no API call whatever the fleet size.
func summarizeFleet(s *setState) fleetReport {
	var f fleetReport
	f.summary.Tenants = int32(s.tenants)
	var stalledReports, otherReports []v1.ChildReport
	for _, d := range s.desired {
		c := s.children[d.name]
		state, report := classifyChild(d, c)
		switch state {
		case childReady:
			f.summary.Ready++
		case childStalled:
			f.summary.Stalled++
			stalledReports = append(stalledReports, report)
		case childSuspended:
			f.summary.Suspended++
		default:
			f.progressing++
			otherReports = append(otherReports, report)
		}
		if c == nil {
			continue
		}
		if conditionTrue(c.Status.Conditions, v1.ConflictCondition) {
			f.summary.InConflict++
		}
		if conditionTrue(c.Status.Conditions, v1.DriftedCondition) {
			f.summary.Drifted++
		}
		f.summary.SelfServiceSubscriptions += c.Status.Summary.SelfServiceSubscriptions
		f.deadline = soonerDeadline(f.deadline, c, s.now)
	}
	// A tenant whose child cannot be written is not counted as progressing:
	// a person must act.
	byName := func(a, b v1.ChildReport) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(stalledReports, byName)
	slices.SortFunc(otherReports, byName)
	notWritten := slices.Clone(s.notWritten)
	slices.SortFunc(notWritten, byName)
	f.notReady = slices.Concat(notWritten, stalledReports, otherReports)
	return f
}

// classifyChild tells how a child counts, and what status.notReady says of
// it when it is not Ready.
func classifyChild(d desiredChild, c *v1.TenantPurchasePolicy) (childState, v1.ChildReport) {
	report := v1.ChildReport{Name: d.name, TenantID: d.tenantID}
	ready := findCondition(c, v1.ReadyCondition)
	switch {
	case c == nil:
		report.Reason, report.Message = v1.ReasonNotSynced, "not created yet"
		return childProgressing, report
	case !c.DeletionTimestamp.IsZero():
		report.Reason, report.Message = v1.ReasonDeleting, "being deleted; the set creates it again once it is gone"
		return childProgressing, report
	case c.Status.ObservedGeneration != c.Generation:
		report.Reason, report.Message = v1.ReasonNotSynced, fmt.Sprintf("generation %d not synced yet", c.Generation)
		return childProgressing, report
	case c.Spec.Suspend:
		return childSuspended, report
	}
	if st := findCondition(c, v1.StalledCondition); st != nil && st.Status == metav1.ConditionTrue {
		report.Reason, report.Message = st.Reason, truncate(st.Message, 1024)
		return childStalled, report
	}
	if ready != nil && ready.Status == metav1.ConditionTrue {
		return childReady, report
	}
	report.Reason, report.Message = v1.ReasonNotSynced, "not synced yet"
	if ready != nil {
		report.Reason, report.Message = ready.Reason, truncate(ready.Message, 1024)
	}
	return childProgressing, report
}

// soonerDeadline returns the sooner of cur and the child's earliest
// full-refund window still open on an active self-service subscription.
func soonerDeadline(cur *v1.RefundDeadline, c *v1.TenantPurchasePolicy, now time.Time) *v1.RefundDeadline {
	if c.Status.Subscriptions == nil {
		return cur
	}
	for _, sub := range c.Status.Subscriptions.SelfService {
		until := sub.FullRefundUntil
		if !activeStatus(sub.Status) || until == nil || !until.After(now) || (cur != nil && !until.Before(&cur.FullRefundUntil)) {
			continue
		}
		cur = &v1.RefundDeadline{FullRefundUntil: *until.DeepCopy(), Policy: c.Name, TenantID: c.Spec.TenantID,
			SubscriptionID: sub.ID, SkuPartNumber: sub.SkuPartNumber}
	}
	return cur
}

func findCondition(c *v1.TenantPurchasePolicy, t string) *metav1.Condition {
	if c == nil {
		return nil
	}
	return meta.FindStatusCondition(c.Status.Conditions, t)
}

func conditionTrue(conds []metav1.Condition, t string) bool {
	return meta.IsStatusConditionTrue(conds, t)
}

// setOutcome is the one verdict on a set's run; conditions and scheduling
// read it.
type setOutcome struct {
	kind            outcomeKind
	reason, message string
	retryAfter      time.Duration
	err             error
}

// computeSetOutcome decides how the run ended, the set's own problems
// first: deleted or being deleted; suspended; a failed Kubernetes call
// (transient); discovery that a person must fix (stalled); a child the set
// cannot write (stalled); stalled children; discovery retrying; children
// still progressing; otherwise succeeded.
func computeSetOutcome(s *setState, f fleetReport) setOutcome {
	discovery := meta.FindStatusCondition(s.set.Status.Conditions, v1.DiscoveryFailedCondition)
	switch {
	case s.deleting && s.err == nil && s.remaining == 0:
		return setOutcome{kind: outcomeDeleted, reason: v1.ReasonDeleting, message: "every child is gone: finalizer released"}
	case s.deleting:
		return setOutcome{kind: outcomeDeleting, reason: v1.ReasonDeleting, err: s.err,
			message: fmt.Sprintf("waiting for %d children to finish their deletionPolicy", s.remaining)}
	case s.suspended:
		return setOutcome{kind: outcomeSuspended, reason: v1.ReasonSuspended, message: "spec.suspend is true: no discovery, no child written or pruned"}
	case s.err != nil:
		o := errorOutcome(s.err)
		return setOutcome{kind: o.kind, reason: o.reason, message: o.message, retryAfter: o.retryAfter, err: s.err}
	case discoveryStalls(discovery):
		return setOutcome{kind: outcomeStalled, reason: discovery.Reason, message: discovery.Message}
	case len(s.notWritten) > 0:
		return setOutcome{kind: outcomeStalled, reason: v1.ReasonChildNotWritten,
			message: fmt.Sprintf("%d children could not be written: %s", len(s.notWritten), reportList(s.notWritten))}
	case f.summary.Stalled > 0:
		return setOutcome{kind: outcomeStalled, reason: v1.ReasonChildrenStalled,
			message: fmt.Sprintf("%d of %d children are Stalled: %s", f.summary.Stalled, f.summary.Tenants, reportList(f.notReady))}
	case discovery != nil && discovery.Status == metav1.ConditionTrue:
		return setOutcome{kind: outcomeWaiting, reason: discovery.Reason, message: discovery.Message}
	case f.progressing > 0:
		return setOutcome{kind: outcomeProgressing, reason: v1.ReasonChildrenProgressing,
			message: fmt.Sprintf("%d of %d children Ready, %d progressing", f.summary.Ready, f.summary.Tenants, f.progressing)}
	}
	return setOutcome{kind: outcomeSucceeded, reason: v1.ReasonSucceeded, message: readySetMessage(f)}
}

// outcomeDeleting: the set is being deleted and children remain.
const outcomeDeleting outcomeKind = "deleting"

func readySetMessage(f fleetReport) string {
	msg := fmt.Sprintf("%d of %d children Ready", f.summary.Ready, f.summary.Tenants)
	if n := f.summary.Suspended; n > 0 {
		msg += fmt.Sprintf(", %d suspended", n)
	}
	return msg
}

// reportList names the first reports: name (reason).
func reportList(reports []v1.ChildReport) string {
	names := make([]string, 0, len(reports))
	for _, r := range reports {
		names = append(names, fmt.Sprintf("%s (%s)", r.Name, r.Reason))
	}
	return truncateList(names, 5)
}

// recordSetStatus derives the set's status from the run: observed
// generation, the handled reconcile request, the fleet counts, the refund
// deadline, the bounded notReady list and the conditions.
func recordSetStatus(s *setState, o setOutcome, f fleetReport) {
	st := &s.set.Status
	st.ObservedGeneration = s.set.Generation
	if v := s.set.Annotations[v1.RequestedAtAnnotation]; v != "" {
		st.LastHandledReconcileAt = v
	}
	if !s.deleting {
		st.Summary = f.summary
		st.NextFullRefundDeadline = f.deadline
		st.NotReady = f.notReady[:min(len(f.notReady), v1.MaxNotReadyReported)]
		if len(st.NotReady) == 0 {
			st.NotReady = nil
		}
		setPruneHeld(s)
	}
	setSetReadiness(s, o)
}

// setSetReadiness sets Ready, Reconciling and Stalled from the outcome, as
// for a policy: never Reconciling and Stalled both True.
func setSetReadiness(s *setState, o setOutcome) {
	conds := &s.set.Status.Conditions
	s.setCondition(v1.ReadyCondition, readyStatus(o.kind, *conds), o.reason, o.message)
	switch o.kind {
	case outcomeStalled:
		s.setCondition(v1.StalledCondition, metav1.ConditionTrue, o.reason, o.message)
		meta.RemoveStatusCondition(conds, v1.ReconcilingCondition)
	case outcomeWaiting, outcomeTransient, outcomeProgressing:
		s.setCondition(v1.ReconcilingCondition, metav1.ConditionTrue, o.reason, o.message)
		meta.RemoveStatusCondition(conds, v1.StalledCondition)
	default:
		meta.RemoveStatusCondition(conds, v1.ReconcilingCondition)
		meta.RemoveStatusCondition(conds, v1.StalledCondition)
	}
}

// setPruneHeld sets PruneHeld: False (PruneDisabled) while spec.prune is
// false, naming the children kept; otherwise the verdict of this run's
// discovery, if one ran (the condition keeps the latest verdict); removed
// without discovery.
func setPruneHeld(s *setState) {
	switch {
	case !ptr.Deref(s.set.Spec.Prune, true):
		msg := "spec.prune is false: no child is ever pruned"
		if len(s.kept) > 0 {
			msg += fmt.Sprintf("; kept %d children of tenants that left: %s", len(s.kept), truncateList(s.kept, 10))
		}
		s.setCondition(v1.PruneHeldCondition, metav1.ConditionFalse, v1.ReasonPruneDisabled, msg)
	case s.set.Spec.Discovery == nil:
		meta.RemoveStatusCondition(&s.set.Status.Conditions, v1.PruneHeldCondition)
	case s.pruneHeld == nil:
	case s.pruneHeld.reason != "":
		s.setCondition(v1.PruneHeldCondition, metav1.ConditionTrue, s.pruneHeld.reason, s.pruneHeld.message)
	default:
		s.setCondition(v1.PruneHeldCondition, metav1.ConditionFalse, v1.ReasonPruneAllowed,
			fmt.Sprintf("the latest discovery was trusted: a customer missing from %d discoveries in a row is pruned", pruneAfterMisses))
	}
}

// flushSetEvents emits the run's Events once status is recorded: one per
// type and reason, notes joined. Children written or not written are
// reported here, from the run's record.
func (r *TenantPurchasePolicySetReconciler) flushSetEvents(s *setState, o setOutcome) {
	for _, w := range []struct {
		reason, verb string
		names        []string
	}{
		{v1.EventChildCreated, "created", s.created},
		{v1.EventChildUpdated, "updated to the set's spec", s.updated},
		{v1.EventChildRestored, "restored (edited by hand)", s.restored},
	} {
		if len(w.names) > 0 {
			s.event(eventNormal, w.reason, "%s %d children: %s", w.verb, len(w.names), truncateList(w.names, 10))
		}
	}
	for _, nw := range s.notWritten {
		if !reported(s.base.Status.NotReady, nw) {
			s.event(eventWarning, v1.EventChildNotWritten, "%s (tenant %s): %s: %s", nw.Name, nw.TenantID, nw.Reason, nw.Message)
		}
	}
	if r.Recorder != nil {
		for _, e := range joinEvents(s.events) {
			r.Recorder.Eventf(s.set, nil, e.eventType, e.reason, eventAction, "%s", e.note)
		}
	}
	s.events = nil
}

// reported tells whether status already showed this problem.
func reported(reports []v1.ChildReport, r v1.ChildReport) bool {
	return slices.ContainsFunc(reports, func(x v1.ChildReport) bool { return x.Name == r.Name && x.Reason == r.Reason })
}

// setResync is the longest a set waits between runs.
const setResync = time.Hour

// scheduleSet decides the next run: never once deleted; soon while children
// are being deleted (their deletions also wake the set); with backoff on a
// failed Kubernetes call; after Microsoft's Retry-After; otherwise at the
// next discovery, refund deadline or resync, jittered. Children's status
// changes wake the set in between (coalesced).
func scheduleSet(s *setState, o setOutcome) (reconcile.Result, error) {
	switch o.kind {
	case outcomeDeleted:
		return reconcile.Result{}, nil
	case outcomeDeleting:
		if o.err != nil {
			return reconcile.Result{}, o.err
		}
		return reconcile.Result{RequeueAfter: 10 * time.Second}, nil
	case outcomeTransient:
		return reconcile.Result{}, o.err
	case outcomeSuspended:
		return reconcile.Result{}, nil
	}
	next := wait.Jitter(setResync, jitterFactor)
	if o.kind == outcomeWaiting && o.retryAfter > 0 {
		next = throttleRequeue(o.retryAfter)
	}
	if d := s.set.Status.NextFullRefundDeadline; d != nil {
		s.wake(d.FullRefundUntil.Time)
	}
	for _, t := range s.wakeAt {
		if d := t.Sub(s.now); d < next {
			next = max(d, time.Second)
		}
	}
	return reconcile.Result{RequeueAfter: next}, nil
}
