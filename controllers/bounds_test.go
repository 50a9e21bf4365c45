package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// overBounds is a status holding everything Microsoft's answers can put
// into it that the CRD refuses: duplicate product and subscription IDs, more
// entries than a list may hold, names and evidence longer than allowed (in
// multi-byte characters), IDs no entry can hold.
func overBounds() v1.TenantPurchasePolicyStatus {
	var st v1.TenantPurchasePolicyStatus
	long := strings.Repeat("é", 300)
	for i := range 300 {
		st.Products = append(st.Products, v1.ProductStatus{ProductID: fmt.Sprintf("CFQ7TTC%05d", i), Name: long, Observed: "Enabled"})
	}
	st.Products = append([]v1.ProductStatus{{ProductID: "CFQ7TTC00001", Name: "first"}, {ProductID: ""}, {ProductID: strings.Repeat("X", 65)}}, st.Products...)
	sub := &v1.SubscriptionsStatus{}
	for i := range 60 {
		sub.SelfService = append(sub.SelfService, v1.SelfServiceSubscription{ID: fmt.Sprintf("sub-%d", i%55), SkuPartNumber: long, Status: long})
	}
	for range 25 {
		sub.Handovers = append(sub.Handovers, v1.HandoverRecord{SubscriptionID: "sub-1", Verdict: v1.VerdictTakenOver, Evidence: long + long, DetectedAt: metav1.Now()})
	}
	st.Subscriptions = sub
	for range 30 {
		st.DriftHistory = append(st.DriftHistory, v1.DriftRecord{ProductID: "CFQ7TTC00001", Expected: long, Found: long, Action: v1.DriftReported, DetectedAt: metav1.Now()})
	}
	st.LastHandledReconcileAt = long
	return st
}

// TestBoundStatus keeps every list and string within the CRD's bounds, the
// first of duplicates, and entries whole (never a cut ID).
func TestBoundStatus(t *testing.T) {
	st := overBounds()
	boundStatus(&st)

	if len(st.Products) != v1.MaxProducts {
		t.Errorf("%d products, want the %d status holds", len(st.Products), v1.MaxProducts)
	}
	seen := map[string]bool{}
	for _, p := range st.Products {
		if seen[p.ProductID] || p.ProductID == "" || len(p.ProductID) > v1.MaxIDLength {
			t.Errorf("entry %q kept: duplicate, empty or too long", p.ProductID)
		}
		seen[p.ProductID] = true
		if n := utf8.RuneCountInString(p.Name); n > v1.MaxNameLength || !utf8.ValidString(p.Name) {
			t.Errorf("%s: name of %d characters (valid UTF-8: %t)", p.ProductID, n, utf8.ValidString(p.Name))
		}
	}
	if st.Products[0].Name != "first" {
		t.Errorf("the first of duplicate entries must stay, got %+v", st.Products[0])
	}
	sub := st.Subscriptions
	if len(sub.SelfService) != v1.MaxSelfService || len(sub.Handovers) != v1.MaxHandovers || len(st.DriftHistory) != v1.MaxDriftHistory {
		t.Errorf("lists not capped: %d self-service, %d handovers, %d drift records", len(sub.SelfService), len(sub.Handovers), len(st.DriftHistory))
	}
	ids := map[string]bool{}
	for _, s := range sub.SelfService {
		if ids[s.ID] {
			t.Errorf("subscription %s twice", s.ID)
		}
		ids[s.ID] = true
		if len(s.SkuPartNumber) > v1.MaxSkuPartNumberLength || len(s.Status) > v1.MaxSubscriptionStatusLength {
			t.Errorf("%s: strings not cut", s.ID)
		}
	}
	for _, h := range sub.Handovers {
		if utf8.RuneCountInString(h.Evidence) > v1.MaxEvidenceLength {
			t.Errorf("evidence of %d characters", utf8.RuneCountInString(h.Evidence))
		}
	}
	if len(st.DriftHistory[0].Found) > v1.MaxValueLength || len(st.LastHandledReconcileAt) > v1.MaxRequestedAtLength {
		t.Errorf("drift values or lastHandledReconcileAt not cut")
	}
}

// TestActKeepsProductsWithinStatus: a tenant that lists more products than
// status holds, twice some, one with an ID no entry can hold: status keeps
// 256 (those it knew first), counts the rest in summary.productsDropped,
// still writes every product that differs, and a product it cannot record is
// not announced as new at every sync.
func TestActKeepsProductsWithinStatus(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var tenant []licensing.Item
	for i := range 300 {
		tenant = append(tenant, licensing.Item{ProductID: fmt.Sprintf("CFQ7TTC%05d", i), ProductName: strings.Repeat("n", 300), PolicyValue: "Disabled"})
	}
	tenant = append(tenant, tenant[0], licensing.Item{ProductID: strings.Repeat("Z", 70), PolicyValue: "Enabled"})
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: v1.TenantPurchasePolicySpec{TenantID: "t", TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled)}}}
	fc := newFakeCluster(t, nil, interceptor.Funcs{}, p)
	var writes []string
	fake := fakePolicies{setProduct: func(ctx context.Context, id, value string) (*licensing.Item, error) {
		writes = append(writes, id)
		return applies(ctx, id, value)
	}}
	for run := range 2 {
		p = fc.get(p)
		pl := plan.Compute(&p.Spec, tenant, nil, now)
		s := &syncState{policy: p, base: p.DeepCopy(), now: now, policies: fake, plan: &pl}
		if err := fc.r.act(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		recordStatus(s, computeOutcome(s))
		if err := fc.r.writeStatus(context.Background(), s); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		got := fc.get(p)
		if len(got.Status.Products) != v1.MaxProducts || got.Status.Summary.ProductsDropped != 45 {
			t.Errorf("run %d: %d entries, %d dropped; want %d and 45 (44 beyond the bound, 1 unaddressable ID)",
				run, len(got.Status.Products), got.Status.Summary.ProductsDropped, v1.MaxProducts)
		}
		for _, e := range s.events {
			if e.reason == v1.EventNewProductDetected {
				t.Errorf("run %d: %s %s", run, e.reason, e.note)
			}
		}
	}
	if diff := cmp.Diff([]string{strings.Repeat("Z", 70), strings.Repeat("Z", 70)}, writes); diff != "" {
		t.Errorf("writes (-want +got): the differing product, recorded or not, once per sync:\n%s", diff)
	}
}
