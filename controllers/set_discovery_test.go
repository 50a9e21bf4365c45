package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// Tenant IDs of the discovery tables.
const (
	tA = "aaaaaaaa-0000-4000-8000-000000000001"
	tB = "bbbbbbbb-0000-4000-8000-000000000002"
	tC = "cccccccc-0000-4000-8000-000000000003"
	tD = "dddddddd-0000-4000-8000-000000000004"
	tE = "eeeeeeee-0000-4000-8000-000000000005"
)

func TestMergeDiscovery(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	last := metav1.NewTime(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	seen := func(id string) v1.DiscoveredTenant { return v1.DiscoveredTenant{TenantID: id, FirstSeen: earlier} }
	missing := func(id string, missed int32) v1.DiscoveredTenant {
		return v1.DiscoveredTenant{TenantID: id, FirstSeen: earlier, LastSeen: ptr.To(earlier), Missed: missed}
	}
	fresh := func(id string) v1.DiscoveredTenant {
		return v1.DiscoveredTenant{TenantID: id, FirstSeen: metav1.NewTime(now)}
	}
	bounds := dropBound{percent: defaultMaxDropPercent, count: defaultMaxDropCount}

	cases := map[string]struct {
		known   []v1.DiscoveredTenant
		found   []string
		bounds  dropBound
		invalid int
		want    []v1.DiscoveredTenant
		merge   discoveryMerge
	}{
		"the first discovery adds every customer, in tenant ID order": {
			found: []string{tC, tA, tB},
			want:  []v1.DiscoveredTenant{fresh(tA), fresh(tB), fresh(tC)},
			merge: discoveryMerge{added: []string{tC, tA, tB}},
		},
		"a customer listed again keeps its first sight": {
			known: []v1.DiscoveredTenant{seen(tA)},
			found: []string{tA, tB},
			want:  []v1.DiscoveredTenant{seen(tA), fresh(tB)},
			merge: discoveryMerge{added: []string{tB}},
		},
		"a customer missing once is counted, with the time it was last listed, and kept": {
			known: []v1.DiscoveredTenant{seen(tA), seen(tB), seen(tC), seen(tD)},
			found: []string{tA, tB, tC},
			want: []v1.DiscoveredTenant{seen(tA), seen(tB), seen(tC),
				{TenantID: tD, FirstSeen: earlier, LastSeen: ptr.To(last), Missed: 1}},
			merge: discoveryMerge{missing: []string{tD}},
		},
		"a customer missing from a second trusted discovery is pruned": {
			known: []v1.DiscoveredTenant{seen(tA), missing(tB, 1)},
			found: []string{tA},
			want:  []v1.DiscoveredTenant{seen(tA)},
			merge: discoveryMerge{missing: []string{tB}, pruned: []string{tB}},
		},
		"a missing customer listed again is whole again": {
			known: []v1.DiscoveredTenant{seen(tA), missing(tB, 1)},
			found: []string{tA, tB},
			want:  []v1.DiscoveredTenant{seen(tA), seen(tB)},
		},
		"an empty answer after customers is not trusted: no one is missing": {
			known: []v1.DiscoveredTenant{seen(tA), missing(tB, 1)},
			found: []string{},
			want:  []v1.DiscoveredTenant{seen(tA), missing(tB, 1)},
			merge: discoveryMerge{hold: v1.ReasonDiscoveryEmpty,
				holdMessage: "the partner listed no customer, the previous discovery 1: nothing is pruned until a discovery lists them again"},
		},
		"an empty answer of a partner without customers is trusted": {
			found: []string{},
			want:  []v1.DiscoveredTenant{},
		},
		"missing more than 20% and more than 2 is not trusted, new customers are still added": {
			known:  []v1.DiscoveredTenant{seen(tA), seen(tB), seen(tC), seen(tD)},
			found:  []string{tA, tE},
			want:   []v1.DiscoveredTenant{seen(tA), seen(tB), seen(tC), seen(tD), fresh(tE)},
			bounds: dropBound{percent: 20, count: 1},
			merge: discoveryMerge{added: []string{tE}, hold: v1.ReasonTooManyMissing,
				holdMessage: "3 of the 4 customers the previous discovery listed are missing (more than 20% and more than 1): nothing is pruned; " +
					"if they really left, raise spec.discovery.maxDropPercent to 75 or maxDropCount to 3"},
		},
		"an answer with invalid entries that misses a customer is not trusted": {
			known:   []v1.DiscoveredTenant{seen(tA), seen(tB)},
			found:   []string{tA},
			invalid: 1,
			want:    []v1.DiscoveredTenant{seen(tA), seen(tB)},
			merge: discoveryMerge{hold: v1.ReasonDiscoveryIncomplete,
				holdMessage: "the answer held 1 entries without a usable tenant ID and missed 1 known customers: nothing is pruned until a complete answer"},
		},
		"an answer with invalid entries that misses no one is trusted": {
			known:   []v1.DiscoveredTenant{seen(tA)},
			found:   []string{tA, tB},
			invalid: 2,
			want:    []v1.DiscoveredTenant{seen(tA), fresh(tB)},
			merge:   discoveryMerge{added: []string{tB}},
		},
		"missing 2 of 4 is within maxDropCount 2": {
			known: []v1.DiscoveredTenant{seen(tA), seen(tB), seen(tC), seen(tD)},
			found: []string{tA, tB},
			want: []v1.DiscoveredTenant{seen(tA), seen(tB),
				{TenantID: tC, FirstSeen: earlier, LastSeen: ptr.To(last), Missed: 1}, {TenantID: tD, FirstSeen: earlier, LastSeen: ptr.To(last), Missed: 1}},
			merge: discoveryMerge{missing: []string{tC, tD}},
		},
		"customers already missing do not count against the bounds": {
			known: []v1.DiscoveredTenant{seen(tA), missing(tB, 1), missing(tC, 1), missing(tD, 1)},
			found: []string{tA},
			want:  []v1.DiscoveredTenant{seen(tA)},
			merge: discoveryMerge{missing: []string{tB, tC, tD}, pruned: []string{tB, tC, tD}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := &v1.DiscoveryStatus{Tenants: tc.known, LastDiscoveryTime: ptr.To(last)}
			b := tc.bounds
			if b == (dropBound{}) {
				b = bounds
			}
			got := mergeDiscovery(st, tc.found, tc.invalid, now, b)
			if diff := cmp.Diff(tc.merge, got, cmp.AllowUnexported(discoveryMerge{})); diff != "" {
				t.Errorf("merge (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, st.Tenants); diff != "" {
				t.Errorf("tenants (-want +got):\n%s", diff)
			}
			if !st.LastDiscoveryTime.Time.Equal(now) || st.Count != int32(len(tc.found)) {
				t.Errorf("lastDiscoveryTime %s, count %d; want %s, %d", st.LastDiscoveryTime, st.Count, now, len(tc.found))
			}
		})
	}
}

func TestNextDiscovery(t *testing.T) {
	attempt := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	partner := "5b2e7c1d-3a4f-4b6c-8d9e-0f1a2b3c4d5e"
	failedWith := func(reason string) []metav1.Condition {
		return []metav1.Condition{{Type: v1.DiscoveryFailedCondition, Status: metav1.ConditionTrue, Reason: reason}}
	}
	cases := map[string]struct {
		status     *v1.DiscoveryStatus
		conditions []metav1.Condition
		now        time.Time
		requested  bool
		wantDue    bool
		wantNext   time.Time
	}{
		"never discovered": {now: attempt, wantDue: true, wantNext: attempt},
		"within the interval": {
			status: &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt))},
			now:    attempt.Add(59 * time.Minute), wantNext: attempt.Add(time.Hour),
		},
		"the interval passed": {
			status: &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt))},
			now:    attempt.Add(time.Hour), wantDue: true, wantNext: attempt.Add(time.Hour),
		},
		"the reconcile-now annotation": {
			status: &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt))},
			now:    attempt.Add(time.Minute), requested: true, wantDue: true, wantNext: attempt.Add(time.Minute),
		},
		"another partner starts over": {
			status: &v1.DiscoveryStatus{PartnerTenantID: tA, LastAttemptTime: ptr.To(metav1.NewTime(attempt))},
			now:    attempt.Add(time.Minute), wantDue: true, wantNext: attempt.Add(time.Minute),
		},
		"after a transient failure, 30s": {
			status:     &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt)), ConsecutiveFailures: 1},
			conditions: failedWith(v1.ReasonTransientError),
			now:        attempt.Add(10 * time.Second), wantNext: attempt.Add(30 * time.Second),
		},
		"after four throttled attempts, 4m": {
			status:     &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt)), ConsecutiveFailures: 4},
			conditions: failedWith(v1.ReasonThrottled),
			now:        attempt.Add(4 * time.Minute), wantDue: true, wantNext: attempt.Add(4 * time.Minute),
		},
		"backoff never exceeds the interval": {
			status:     &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt)), ConsecutiveFailures: 40},
			conditions: failedWith(v1.ReasonTransientError),
			now:        attempt, wantNext: attempt.Add(time.Hour),
		},
		"a failure a person must fix waits the interval": {
			status:     &v1.DiscoveryStatus{PartnerTenantID: partner, LastAttemptTime: ptr.To(metav1.NewTime(attempt)), ConsecutiveFailures: 1},
			conditions: failedWith(v1.ReasonDiscoveryForbidden),
			now:        attempt.Add(time.Minute), wantNext: attempt.Add(time.Hour),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			set := &v1.TenantPurchasePolicySet{
				Spec: v1.TenantPurchasePolicySetSpec{Discovery: &v1.SetDiscovery{DelegatedAdminCustomers: &v1.DelegatedAdminCustomersDiscovery{
					PartnerTenantID: partner, Interval: metav1.Duration{Duration: time.Hour}}}},
				Status: v1.TenantPurchasePolicySetStatus{Discovery: tc.status, Conditions: tc.conditions},
			}
			due, next := discoveryDue(set, tc.now, tc.requested)
			if due != tc.wantDue || !next.Equal(tc.wantNext) {
				t.Errorf("due %t at %s, want %t at %s", due, next, tc.wantDue, tc.wantNext)
			}
		})
	}
}

func TestDiscoveryErrorNamesThePermission(t *testing.T) {
	err := discoveryError(stalled(v1.ReasonForbidden, "Authorization_RequestDenied: Insufficient privileges"), tA)
	st, ok := asStalled(err)
	if !ok || st.reason != v1.ReasonDiscoveryForbidden {
		t.Fatalf("got %v, want a %s stall", err, v1.ReasonDiscoveryForbidden)
	}
	for _, want := range []string{tA, "DelegatedAdminRelationship.Read.All", "Admin Agent", "Insufficient privileges"} {
		if !strings.Contains(st.message, want) {
			t.Errorf("message %q lacks %q", st.message, want)
		}
	}
	if st, _ := asStalled(discoveryError(stalled(v1.ReasonSecretNotFound, "Secret x/y not found"), tA)); st.reason != v1.ReasonSecretNotFound {
		t.Errorf("a missing Secret stays %s, got %s", v1.ReasonSecretNotFound, st.reason)
	}
}
