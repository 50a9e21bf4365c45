package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// fleetOfSize is a set with n discovered customers and, as the cache holds
// them, n children that match it, Ready, with full statuses (256 products,
// a self-service subscription).
func fleetOfSize(n int) (*v1.TenantPurchasePolicySet, map[string]*v1.TenantPurchasePolicy) {
	set := &v1.TenantPurchasePolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: "fleet", Namespace: "partner", UID: "set-uid", Generation: 1},
		Spec: v1.TenantPurchasePolicySetSpec{
			Template: v1.PolicySetTemplate{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled),
				Products:      []v1.ProductRule{{ProductID: "CFQ7TTC0MM8R", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
				Interval:      metav1.Duration{Duration: 15 * time.Minute},
				Subscriptions: v1.SubscriptionTracking{Track: ptr.To(true)},
			}},
			Discovery:   &v1.SetDiscovery{DelegatedAdminCustomers: &v1.DelegatedAdminCustomersDiscovery{PartnerTenantID: tA}},
			ChildLabels: map[string]v1.LabelValue{"shard": "a"},
		},
		Status: v1.TenantPurchasePolicySetStatus{ObservedGeneration: 1, Discovery: &v1.DiscoveryStatus{PartnerTenantID: tA}},
	}
	products := make([]v1.ProductStatus, 256)
	for i := range products {
		products[i] = v1.ProductStatus{ProductID: fmt.Sprintf("CFQ7TTC%05d", i), Desired: v1.PolicyDisabled, Observed: "Disabled"}
	}
	owned := make(map[string]*v1.TenantPurchasePolicy, n)
	tpl := &set.Spec.Template.TenantPurchasePolicyTemplate
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		set.Status.Discovery.Tenants = append(set.Status.Discovery.Tenants, v1.DiscoveredTenant{TenantID: id})
		name := set.Name + "-" + id[:8]
		c := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "partner", Generation: 1,
			Labels:          childLabels(set),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, v1.GroupVersion.WithKind("TenantPurchasePolicySet"))}},
			Spec: plan.TenantSpec(tpl, id, nil)}
		c.Status.ObservedGeneration = 1
		c.Status.Conditions = []metav1.Condition{{Type: v1.ReadyCondition, Status: metav1.ConditionTrue, Reason: v1.ReasonSucceeded},
			{Type: v1.DriftedCondition, Status: metav1.ConditionFalse, Reason: v1.ReasonInSync}}
		c.Status.Products = products
		c.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{
			{ID: "sub", Status: "Enabled", FullRefundUntil: ptr.To(metav1.NewTime(time.Now().Add(time.Duration(i+1) * time.Minute)))}}}
		owned[name] = c
	}
	return set, owned
}

// BenchmarkSetRun10000Children is what a set's run costs in memory and CPU
// at 10,000 children once they exist and match: plan every child, compare
// it with the cache, add up the fleet. No API call is made (writeChildren
// writes nothing when every child matches; that is the steady state).
func BenchmarkSetRun10000Children(b *testing.B) {
	set, owned := fleetOfSize(10000)
	r := &TenantPurchasePolicySetReconciler{}
	b.ReportAllocs()
	for b.Loop() {
		s := &setState{set: set, base: set, now: time.Now(), owned: owned, foreign: map[string]bool{}, children: map[string]*v1.TenantPurchasePolicy{}}
		if err := r.planChildren(context.Background(), s); err != nil {
			b.Fatal(err)
		}
		for _, d := range s.desired {
			c := owned[d.name]
			if c == nil || !childMatches(c, set, d) {
				b.Fatalf("child %s does not match", d.name)
			}
			s.children[d.name] = c
		}
		if f := summarizeFleet(s); f.summary.Ready != 10000 {
			b.Fatalf("ready %d", f.summary.Ready)
		}
	}
}

// BenchmarkChildStatusEvent is what one child's periodic sync costs the set
// controller: deciding that nothing the set reports changed.
func BenchmarkChildStatusEvent(b *testing.B) {
	_, owned := fleetOfSize(1)
	old := owned["fleet-00000000"]
	cur := old.DeepCopy()
	cur.Status.LastSyncTime = ptr.To(metav1.Now())
	b.ReportAllocs()
	for b.Loop() {
		if fleetViewChanged(old, cur) {
			b.Fatal("a sync that changed nothing woke the set")
		}
	}
}
