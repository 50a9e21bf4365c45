package controllers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

var statusNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fleetChild is a child at generation 1 with the given conditions (type=status:reason).
func fleetChild(name string, conds ...string) *v1.TenantPurchasePolicy {
	c := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1}, Spec: v1.TenantPurchasePolicySpec{TenantID: tA}}
	c.Status.ObservedGeneration = 1
	for _, s := range conds {
		var t, st, reason string
		if _, err := fmt.Sscanf(s, "%s %s %s", &t, &st, &reason); err != nil {
			panic(err)
		}
		c.Status.Conditions = append(c.Status.Conditions, metav1.Condition{Type: t, Status: metav1.ConditionStatus(st), Reason: reason, Message: t + " says " + reason})
	}
	return c
}

func selfService(id string, status string, fullRefund time.Time) v1.SelfServiceSubscription {
	return v1.SelfServiceSubscription{ID: id, Status: status, SkuPartNumber: "Microsoft_365_Copilot", FullRefundUntil: ptr.To(metav1.NewTime(fullRefund))}
}

// fleetOf is a run state with the children desired and seen.
func fleetOf(children ...*v1.TenantPurchasePolicy) *setState {
	s := &setState{set: &v1.TenantPurchasePolicySet{ObjectMeta: metav1.ObjectMeta{Generation: 3}}, now: statusNow, children: map[string]*v1.TenantPurchasePolicy{}}
	for _, c := range children {
		s.desired = append(s.desired, desiredChild{name: c.Name, tenantID: c.Spec.TenantID})
		if c.Generation > 0 {
			s.children[c.Name] = c
		}
	}
	s.tenants = len(s.desired)
	return s
}

func TestSummarizeFleet(t *testing.T) {
	ready := fleetChild("a-ready", "Ready True Succeeded", "Drifted False InSync")
	ready.Status.Summary.SelfServiceSubscriptions = 2
	ready.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{
		selfService("later", "Enabled", statusNow.Add(20*time.Hour)),
		selfService("passed", "Enabled", statusNow.Add(-time.Hour)),
		selfService("soonest-but-deleted", "Deleted", statusNow.Add(time.Hour)),
	}}
	observe := fleetChild("b-observe", "Ready True Succeeded", "Drifted True DriftDetected")
	observe.Status.Summary.SelfServiceSubscriptions = 1
	observe.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{selfService("soonest", "Warning", statusNow.Add(3*time.Hour))}}
	conflict := fleetChild("c-conflict", "Ready False ConflictLost", "Stalled True ConflictLost", "Conflict True TenantOwnedByAnotherPolicy")
	secret := fleetChild("d-secret", "Ready False SecretNotFound", "Stalled True SecretNotFound")
	retrying := fleetChild("e-throttled", "Ready False Throttled", "Reconciling True Throttled")
	unsynced := fleetChild("f-new")
	unsynced.Generation = 2
	suspended := fleetChild("g-suspended", "Ready Unknown Suspended")
	suspended.Spec.Suspend = true
	missing := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "h-missing"}, Spec: v1.TenantPurchasePolicySpec{TenantID: tB}}

	s := fleetOf(ready, observe, conflict, secret, retrying, unsynced, suspended, missing)
	s.notWritten = []v1.ChildReport{{Name: "z-taken", TenantID: tC, Reason: v1.ReasonNameTaken}}
	s.tenants++
	f := summarizeFleet(s)

	want := v1.SetSummary{Tenants: 9, Ready: 2, Drifted: 1, Stalled: 2, InConflict: 1, Suspended: 1, SelfServiceSubscriptions: 3}
	if diff := cmp.Diff(want, f.summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if f.progressing != 3 {
		t.Errorf("%d progressing, want 3 (throttled, not synced, not created)", f.progressing)
	}
	var names []string
	for _, r := range f.notReady {
		names = append(names, r.Name+":"+r.Reason)
	}
	wantNames := []string{"z-taken:NameTaken", "c-conflict:ConflictLost", "d-secret:SecretNotFound", "e-throttled:Throttled", "f-new:NotSynced", "h-missing:NotSynced"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("notReady: not written first, then stalled, then the rest, by name (-want +got):\n%s", diff)
	}
	wantDeadline := &v1.RefundDeadline{FullRefundUntil: metav1.NewTime(statusNow.Add(3 * time.Hour)), Policy: "b-observe", TenantID: tA,
		SubscriptionID: "soonest", SkuPartNumber: "Microsoft_365_Copilot"}
	if diff := cmp.Diff(wantDeadline, f.deadline); diff != "" {
		t.Errorf("deadline: the soonest open window of an active subscription (-want +got):\n%s", diff)
	}
}

func TestComputeSetOutcome(t *testing.T) {
	readyChild := fleetChild("a", "Ready True Succeeded")
	stalledChild := fleetChild("b", "Ready False ConflictLost", "Stalled True ConflictLost")
	newChild := fleetChild("c")
	newChild.Generation = 2
	discovery := func(reason string) metav1.Condition {
		return metav1.Condition{Type: v1.DiscoveryFailedCondition, Status: metav1.ConditionTrue, Reason: reason, Message: "discovery failed: " + reason}
	}
	cases := map[string]struct {
		s          *setState
		conditions []metav1.Condition
		kind       outcomeKind
		reason     string
	}{
		"every child Ready":                {s: fleetOf(readyChild), kind: outcomeSucceeded, reason: v1.ReasonSucceeded},
		"a child not synced yet":           {s: fleetOf(readyChild, newChild), kind: outcomeProgressing, reason: v1.ReasonChildrenProgressing},
		"a stalled child wins over others": {s: fleetOf(readyChild, newChild, stalledChild), kind: outcomeStalled, reason: v1.ReasonChildrenStalled},
		"discovery retrying": {s: fleetOf(readyChild), conditions: []metav1.Condition{discovery(v1.ReasonThrottled)},
			kind: outcomeWaiting, reason: v1.ReasonThrottled},
		"discovery a person must fix wins over stalled children": {s: fleetOf(stalledChild), conditions: []metav1.Condition{discovery(v1.ReasonDiscoveryForbidden)},
			kind: outcomeStalled, reason: v1.ReasonDiscoveryForbidden},
		"a child the set cannot write": {s: func() *setState {
			s := fleetOf(readyChild)
			s.notWritten = []v1.ChildReport{{Name: "x", Reason: v1.ReasonNameTaken}}
			return s
		}(), kind: outcomeStalled, reason: v1.ReasonChildNotWritten},
		"a failed Kubernetes call": {s: func() *setState { s := fleetOf(readyChild); s.err = errors.New("etcd timeout"); return s }(),
			kind: outcomeTransient, reason: v1.ReasonTransientError},
		"suspended": {s: func() *setState { s := fleetOf(stalledChild); s.suspended = true; return s }(), kind: outcomeSuspended, reason: v1.ReasonSuspended},
		"being deleted, children remain": {s: func() *setState { s := fleetOf(); s.deleting, s.remaining = true, 2; return s }(),
			kind: outcomeDeleting, reason: v1.ReasonDeleting},
		"deleted": {s: func() *setState { s := fleetOf(); s.deleting = true; return s }(), kind: outcomeDeleted, reason: v1.ReasonDeleting},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			tc.s.set.Status.Conditions = tc.conditions
			o := computeSetOutcome(tc.s, summarizeFleet(tc.s))
			if o.kind != tc.kind || o.reason != tc.reason {
				t.Fatalf("outcome %s/%s (%s), want %s/%s", o.kind, o.reason, o.message, tc.kind, tc.reason)
			}
			setSetReadiness(tc.s, o)
			conds := tc.s.set.Status.Conditions
			if meta.IsStatusConditionTrue(conds, v1.StalledCondition) && meta.IsStatusConditionTrue(conds, v1.ReconcilingCondition) {
				t.Error("Stalled and Reconciling both True")
			}
			ready := meta.FindStatusCondition(conds, v1.ReadyCondition)
			if (ready.Status == metav1.ConditionTrue) != (tc.kind == outcomeSucceeded) {
				t.Errorf("Ready=%s for %s", ready.Status, tc.kind)
			}
			if ready.ObservedGeneration != 3 {
				t.Errorf("Ready's observedGeneration %d, want the set's 3", ready.ObservedGeneration)
			}
		})
	}
}

func TestFleetViewChanged(t *testing.T) {
	base := fleetChild("a", "Ready True Succeeded", "Drifted False InSync")
	base.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{selfService("s", "Enabled", statusNow)}}
	cases := map[string]struct {
		edit func(*v1.TenantPurchasePolicy)
		want bool
	}{
		"a periodic sync that changed nothing the set reports": {edit: func(p *v1.TenantPurchasePolicy) {
			p.Status.LastSyncTime = ptr.To(metav1.NewTime(statusNow))
			p.Status.Conditions[0].Message = "tenant matches the policy: 21 managed products"
		}},
		"Ready turned False":    {edit: func(p *v1.TenantPurchasePolicy) { p.Status.Conditions[0].Status = metav1.ConditionFalse }, want: true},
		"drift found":           {edit: func(p *v1.TenantPurchasePolicy) { p.Status.Conditions[1].Status = metav1.ConditionTrue }, want: true},
		"a new generation seen": {edit: func(p *v1.TenantPurchasePolicy) { p.Status.ObservedGeneration = 2 }, want: true},
		"a self-service purchase": {edit: func(p *v1.TenantPurchasePolicy) { p.Status.Summary.SelfServiceSubscriptions = 1 },
			want: true},
		"a refund window moved by a renewal": {edit: func(p *v1.TenantPurchasePolicy) {
			p.Status.Subscriptions.SelfService[0].FullRefundUntil = ptr.To(metav1.NewTime(statusNow.Add(24 * time.Hour)))
		}, want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.edit(cur)
			if got := fleetViewChanged(base, cur); got != tc.want {
				t.Errorf("fleetViewChanged = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestScheduleSet(t *testing.T) {
	s := fleetOf()
	s.wake(statusNow.Add(10 * time.Minute))
	s.set.Status.NextFullRefundDeadline = &v1.RefundDeadline{FullRefundUntil: metav1.NewTime(statusNow.Add(3 * time.Minute))}
	res, err := scheduleSet(s, setOutcome{kind: outcomeSucceeded})
	if err != nil || res.RequeueAfter != 3*time.Minute {
		t.Errorf("next run after %s (%v), want at the refund deadline, 3m", res.RequeueAfter, err)
	}
	res, err = scheduleSet(fleetOf(), setOutcome{kind: outcomeSucceeded})
	if err != nil || res.RequeueAfter < setResync || res.RequeueAfter > setResync*11/10 {
		t.Errorf("next run after %s (%v), want the resync with up to 10%% jitter", res.RequeueAfter, err)
	}
	boom := errors.New("boom")
	if _, err := scheduleSet(fleetOf(), setOutcome{kind: outcomeTransient, err: boom}); !errors.Is(err, boom) {
		t.Errorf("a transient failure returns its error for backoff, got %v", err)
	}
	if res, err := scheduleSet(fleetOf(), setOutcome{kind: outcomeDeleted}); err != nil || res.RequeueAfter != 0 {
		t.Errorf("a deleted set runs again: %v %v", res, err)
	}
}
