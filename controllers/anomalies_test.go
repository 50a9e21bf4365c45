package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// TestSetListAnomalies: what a list answer held beyond its items reaches
// status.listAnomalies (a list not read this run keeps its counts), and a
// change, never a repeat, is announced with a Warning Event.
func TestSetListAnomalies(t *testing.T) {
	info := func(d, i, tr int) *m365.ListInfo { return &m365.ListInfo{Duplicates: d, Invalid: i, Truncated: tr} }
	for name, tc := range map[string]struct {
		before         *v1.ListAnomalies
		products, subs *m365.ListInfo
		want           *v1.ListAnomalies
		wantEvent      bool
	}{
		"clean lists":                {products: info(0, 0, 0), subs: info(0, 0, 0)},
		"nothing read keeps nothing": {},
		"duplicates and a cut name": {products: info(3, 0, 1), subs: info(0, 2, 0),
			want: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 3, Truncated: 1}, Subscriptions: &v1.ListCounts{Invalid: 2}}, wantEvent: true},
		"the same again is not announced": {before: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 3}}, products: info(3, 0, 0),
			want: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 3}}},
		"a change is announced": {before: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 3}}, products: info(4, 0, 0),
			want: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 4}}, wantEvent: true},
		"subscriptions not read keep their counts": {before: &v1.ListAnomalies{Subscriptions: &v1.ListCounts{Duplicates: 1}}, products: info(0, 0, 0),
			want: &v1.ListAnomalies{Subscriptions: &v1.ListCounts{Duplicates: 1}}},
		"clean again clears": {before: &v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 3}}, products: info(0, 0, 0), subs: info(0, 0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			s := &syncState{policy: &v1.TenantPurchasePolicy{}, productList: tc.products, subscriptionList: tc.subs}
			s.policy.Status.ListAnomalies = tc.before
			setListAnomalies(s)
			if diff := cmp.Diff(tc.want, s.policy.Status.ListAnomalies); diff != "" {
				t.Errorf("listAnomalies (-want +got):\n%s", diff)
			}
			var warned bool
			for _, e := range s.events {
				warned = warned || (e.reason == v1.EventListAnomalies && e.eventType == eventWarning)
			}
			if warned != tc.wantEvent {
				t.Errorf("Warning Event %s: got %v, want %v (%v)", v1.EventListAnomalies, warned, tc.wantEvent, s.events)
			}
		})
	}
}
