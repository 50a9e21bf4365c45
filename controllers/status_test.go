package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// conds projects conditions to "Status/Reason" by type.
func conds(cs []metav1.Condition) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		out[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return out
}

// leftovers are conditions a previous reconcile may have left, including the
// invalid pair Reconciling+Stalled, so each row shows what it clears.
func leftovers(ready metav1.ConditionStatus) []metav1.Condition {
	return []metav1.Condition{
		{Type: v1.ReadyCondition, Status: ready, Reason: "Before"},
		{Type: v1.ReconcilingCondition, Status: metav1.ConditionTrue, Reason: "Before"},
		{Type: v1.StalledCondition, Status: metav1.ConditionTrue, Reason: "Before"},
	}
}

func prodStatus(id string, desired v1.PolicyValue, observed string) v1.ProductStatus {
	return v1.ProductStatus{ProductID: id, Desired: desired, Observed: observed}
}

func TestConditionsTruthTable(t *testing.T) {
	compliant := []v1.ProductStatus{prodStatus("A", v1.PolicyDisabled, "Disabled"), prodStatus("B", "", "Enabled")}
	differs := []v1.ProductStatus{prodStatus("A", v1.PolicyDisabled, "Enabled"), prodStatus("B", "", "Enabled")}
	throttled := &m365.Error{Kind: m365.Throttled, Op: "list products", StatusCode: 429, RetryAfter: 3 * time.Second}

	cases := map[string]struct {
		reason    string
		mode      v1.Mode
		before    metav1.ConditionStatus
		products  []v1.ProductStatus
		read      bool // the tenant was read (a plan exists)
		lost      bool // ownership was lost, so act did not run
		err       error
		softErr   error
		suspended bool
		owner     string
		checked   bool
		want      map[string]string
		// wantInMessage must appear in the Ready message.
		wantInMessage string
	}{
		"converged": {
			reason: "Enforce and the tenant matches: Ready, not drifted, nothing in progress",
			mode:   v1.ModeEnforce, before: metav1.ConditionFalse, products: compliant, read: true, checked: true,
			want: map[string]string{"Ready": "True/Succeeded", "Drifted": "False/InSync", "Conflict": "False/NoConflict"},
		},
		"observe differs": {
			reason: "Observe reports the difference and stays Ready",
			mode:   v1.ModeObserve, before: metav1.ConditionFalse, products: differs, read: true, checked: true,
			want:          map[string]string{"Ready": "True/Succeeded", "Drifted": "True/DriftDetected", "Conflict": "False/NoConflict"},
			wantInMessage: "1 differ",
		},
		"observe in sync": {
			reason: "Observe with nothing to report",
			mode:   v1.ModeObserve, before: metav1.ConditionFalse, products: compliant, read: true, checked: true,
			want: map[string]string{"Ready": "True/Succeeded", "Drifted": "False/InSync", "Conflict": "False/NoConflict"},
		},
		"throttled": {
			reason: "a 429 is waited out: Reconciling, never Stalled",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, err: classify(throttled),
			want:          map[string]string{"Ready": "False/Throttled", "Reconciling": "True/Throttled"},
			wantInMessage: "wait 3s",
		},
		"transient": {
			reason: "a 5xx is retried with backoff: Reconciling",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, err: classify(&m365.Error{Kind: m365.Transient, Op: "list products", StatusCode: 503}),
			want: map[string]string{"Ready": "False/TransientError", "Reconciling": "True/TransientError"},
		},
		"transient write leaves drift": {
			reason: "a failed write leaves the product drifted, and says so",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, products: differs, read: true, checked: true,
			err:  classify(&m365.Error{Kind: m365.Transient, Op: "set product", StatusCode: 500}),
			want: map[string]string{"Ready": "False/TransientError", "Reconciling": "True/TransientError", "Drifted": "True/DriftDetected", "Conflict": "False/NoConflict"},
		},
		"missing secret": {
			reason: "a person must act: Stalled with the precise reason",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, err: stalled(v1.ReasonSecretNotFound, "Secret ns/app not found"),
			want:          map[string]string{"Ready": "False/SecretNotFound", "Stalled": "True/SecretNotFound"},
			wantInMessage: "ns/app",
		},
		"unauthorized": {
			reason: "a 401 from Entra is the credential's fault: Stalled",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, err: classify(&m365.Error{Kind: m365.Unauthorized, Op: "get token", StatusCode: 401, Code: "invalid_client"}),
			want: map[string]string{"Ready": "False/AuthenticationFailed", "Stalled": "True/AuthenticationFailed"},
		},
		"forbidden": {
			reason: "a 403 needs a permission: Stalled with Microsoft's reason",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, products: differs, read: true, checked: true,
			err:           classify(&m365.Error{Kind: m365.Forbidden, Op: "set product", StatusCode: 403, Reason: "The caller does not have the permission"}),
			want:          map[string]string{"Ready": "False/Forbidden", "Stalled": "True/Forbidden", "Drifted": "True/DriftDetected", "Conflict": "False/NoConflict"},
			wantInMessage: "The caller does not have the permission",
		},
		"unknown product": {
			reason: "an unknown product stalls after the other products were enforced",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, products: compliant, read: true, checked: true,
			softErr:       stalled(v1.ReasonUnknownProduct, "the tenant has no product or offer type CFQ7TTC0ZZZ9"),
			want:          map[string]string{"Ready": "False/UnknownProduct", "Stalled": "True/UnknownProduct", "Drifted": "False/InSync", "Conflict": "False/NoConflict"},
			wantInMessage: "CFQ7TTC0ZZZ9",
		},
		"hard error wins over soft": {
			reason: "an error that stopped the run is reported before an unknown product",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue,
			err:     classify(throttled),
			softErr: stalled(v1.ReasonUnknownProduct, "CFQ7TTC0ZZZ9"),
			want:    map[string]string{"Ready": "False/Throttled", "Reconciling": "True/Throttled"},
		},
		"conflict lost": {
			reason: "a newer Enforce policy of the tenant stalls and names the owner",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, read: true, lost: true, checked: true, owner: "team-a/contoso",
			err:           stalled(v1.ReasonConflictLost, "tenant is enforced by team-a/contoso"),
			want:          map[string]string{"Ready": "False/ConflictLost", "Stalled": "True/ConflictLost", "Conflict": "True/TenantOwnedByAnotherPolicy"},
			wantInMessage: "team-a/contoso",
		},
		"suspended keeps Ready True": {
			reason: "suspend changes no status, only says why nothing happens",
			mode:   v1.ModeEnforce, before: metav1.ConditionTrue, suspended: true,
			want: map[string]string{"Ready": "True/Suspended"},
		},
		"suspended keeps Ready False": {
			reason: "a failing policy suspended stays not Ready",
			mode:   v1.ModeEnforce, before: metav1.ConditionFalse, suspended: true,
			want: map[string]string{"Ready": "False/Suspended"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Generation: 7}, Spec: v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: tc.mode}}}
			p.Status.Conditions = leftovers(tc.before)
			p.Status.Products = tc.products
			s := &syncState{policy: p, now: time.Now(), err: tc.err, softErr: tc.softErr, suspended: tc.suspended,
				conflictOwner: tc.owner, ownerChecked: tc.checked}
			if tc.read {
				s.plan = &plan.Plan{}
				s.acted = !tc.lost // a loser reads the tenant but records no products, so claims no drift
			}
			recordStatus(s, computeOutcome(s))

			if diff := cmp.Diff(tc.want, conds(p.Status.Conditions)); diff != "" {
				t.Errorf("%s\nconditions (-want +got):\n%s", tc.reason, diff)
			}
			if meta.IsStatusConditionTrue(p.Status.Conditions, v1.ReconcilingCondition) && meta.IsStatusConditionTrue(p.Status.Conditions, v1.StalledCondition) {
				t.Errorf("%s: Reconciling and Stalled are both True", tc.reason)
			}
			for _, c := range p.Status.Conditions {
				if c.ObservedGeneration != 7 {
					t.Errorf("%s: condition %s has observedGeneration %d, want 7", tc.reason, c.Type, c.ObservedGeneration)
				}
			}
			ready := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition)
			if tc.wantInMessage != "" && !strings.Contains(ready.Message, tc.wantInMessage) {
				t.Errorf("%s: Ready message %q lacks %q", tc.reason, ready.Message, tc.wantInMessage)
			}
			if got, want := p.Status.Summary.Ready, strings.Split(tc.want["Ready"], "/")[0]; got != want {
				t.Errorf("%s: summary.ready = %q, want %q", tc.reason, got, want)
			}
			if got := p.Status.ObservedGeneration; got != 7 {
				t.Errorf("%s: status.observedGeneration = %d, want 7", tc.reason, got)
			}
		})
	}
}

func TestRecordStatusSyncTimes(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	cases := map[string]struct {
		reason     string
		read       bool
		annotation string
		wantSync   metav1.Time
		wantHandle string
	}{
		"read": {
			reason: "a successful read moves lastSyncTime and acknowledges the reconcile-now request",
			read:   true, annotation: "42", wantSync: metav1.NewTime(now), wantHandle: "42",
		},
		"not read": {
			reason: "a run that could not read the tenant keeps the last sync time but still acknowledges the request",
			read:   false, annotation: "43", wantSync: earlier, wantHandle: "43",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{v1.RequestedAtAnnotation: tc.annotation}}}
			p.Status.LastSyncTime = earlier.DeepCopy()
			s := &syncState{policy: p, now: now, err: errors.New("boom")}
			if tc.read {
				s.plan, s.err = &plan.Plan{}, nil
			}
			recordStatus(s, computeOutcome(s))
			got := []string{p.Status.LastSyncTime.UTC().String(), p.Status.LastHandledReconcileAt}
			want := []string{tc.wantSync.UTC().String(), tc.wantHandle}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s\n[lastSyncTime lastHandledReconcileAt] (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	cases := map[string]struct {
		reason string
		status v1.TenantPurchasePolicyStatus
		want   v1.Summary
	}{
		"empty": {
			reason: "nothing read yet: zero counts, Ready Unknown",
			want:   v1.Summary{Ready: "Unknown"},
		},
		"mixed": {
			reason: "unmanaged products are not managed; offer types count like products; drifted = managed - compliant",
			status: v1.TenantPurchasePolicyStatus{
				Conditions: []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionTrue}},
				Products: []v1.ProductStatus{
					prodStatus("A", v1.PolicyDisabled, "Disabled"),
					prodStatus("B", v1.PolicyDisabled, "Enabled"),
					prodStatus("C", "", "Enabled"),
					prodStatus("D", v1.PolicyOnlyTrials, "OnlyTrialsWithoutPaymentMethod"),
				},
				OfferTypes: []v1.ProductStatus{prodStatus("SaaS", v1.PolicyDisabled, "Enabled")},
			},
			want: v1.Summary{Ready: "True", Managed: 4, Compliant: 2, Drifted: 2, Unmanaged: 1},
		},
		"self-service": {
			reason: "self-service subscriptions still in their buyer's hands are counted: Enabled, Warning and Suspended (users keep their licences), not Deleted nor handed over",
			status: v1.TenantPurchasePolicyStatus{
				Conditions: []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionFalse}},
				Subscriptions: &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{
					{ID: "1", Status: "Enabled"}, {ID: "2", Status: "Warning"}, {ID: "3", Status: "Deleted"}, {ID: "4", Status: "Suspended"},
					{ID: "5", Status: "Warning", Handover: v1.VerdictTakenOver},
				}},
			},
			want: v1.Summary{Ready: "False", SelfServiceSubscriptions: 3},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summarize(&tc.status)); diff != "" {
				t.Errorf("%s\nsummary (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
