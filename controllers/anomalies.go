package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// setListAnomalies records in status.listAnomalies what this run's
// Microsoft lists held beyond the items the clients returned (duplicates,
// unusable items, cut fields), each list only when it was read (a list not
// read keeps the last sync's counts), and announces a change with a Warning
// Event: a person learns that Microsoft (or a proxy) answered lists the
// controller had to clean, instead of the items silently going missing.
func setListAnomalies(s *syncState) {
	st := &s.policy.Status
	next := &v1.ListAnomalies{}
	if st.ListAnomalies != nil {
		next = st.ListAnomalies.DeepCopy()
	}
	if s.productList != nil {
		next.Products = listCounts(*s.productList)
	}
	if s.subscriptionList != nil {
		next.Subscriptions = listCounts(*s.subscriptionList)
	}
	if next.Products == nil && next.Subscriptions == nil {
		next = nil
	}
	if next != nil && !equality.Semantic.DeepEqual(next, st.ListAnomalies) {
		var notes []string
		for _, l := range []struct {
			name string
			c    *v1.ListCounts
		}{{"product list", next.Products}, {"subscription lists", next.Subscriptions}} {
			if l.c != nil {
				notes = append(notes, fmt.Sprintf("%s: %d duplicate and %d unusable item(s) dropped, %d cut to fit", l.name, l.c.Duplicates, l.c.Invalid, l.c.Truncated))
			}
		}
		s.event(eventWarning, v1.EventListAnomalies, "Microsoft's answers for tenant %s held items the controller could not use as answered (status.listAnomalies): %s",
			s.policy.Spec.TenantID, strings.Join(notes, "; "))
	}
	st.ListAnomalies = next
}

// listCounts is the status form of a ListInfo; nil when the list was clean.
func listCounts(i m365.ListInfo) *v1.ListCounts {
	if i == (m365.ListInfo{}) {
		return nil
	}
	return &v1.ListCounts{Duplicates: clampInt32(i.Duplicates), Invalid: clampInt32(i.Invalid), Truncated: clampInt32(i.Truncated)}
}

func clampInt32(n int) int32 { return int32(min(n, 1<<31-1)) }
