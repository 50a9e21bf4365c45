package controllers

import (
	"context"
	"testing"
	"time"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// fakeDirectory serves fixed subscriptions and SKUs and counts user reads.
type fakeDirectory struct {
	subs      []graph.Subscription
	skus      []graph.SubscribedSku
	userReads int
}

func (f *fakeDirectory) ListSubscriptions(context.Context) ([]graph.Subscription, m365.ListInfo, error) {
	return f.subs, m365.ListInfo{}, nil
}

func (f *fakeDirectory) ListSubscribedSkus(context.Context) ([]graph.SubscribedSku, m365.ListInfo, error) {
	return f.skus, m365.ListInfo{}, nil
}

func (f *fakeDirectory) GetUser(_ context.Context, id string) (graph.User, error) {
	f.userReads++
	return graph.User{ID: id}, nil
}

func TestTrackingKeepsAnActiveSubscriptionMissingFromSubscribedSkus(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	sub := graph.Subscription{ID: "erin-sub", SkuID: "sku", SkuPartNumber: "Microsoft_365_Copilot", Status: "Enabled",
		OwnerType: "User", OwnerID: "erin", TotalLicenses: 1, Created: now.Add(-time.Hour)}
	dir := &fakeDirectory{
		subs: []graph.Subscription{sub, {ID: "org-sub", SkuID: "sku", Status: "Enabled", OwnerType: "Company", TotalLicenses: 10}},
		// subscribedSkus lags: it does not list erin's subscription yet.
		skus: []graph.SubscribedSku{{SkuID: "sku", AccountID: "org", Enabled: 10, Consumed: 3, SubscriptionIDs: []string{"org-sub"}}},
	}
	r := &TenantPurchasePolicyReconciler{}
	p := &v1.TenantPurchasePolicy{}
	p.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: []v1.SelfServiceSubscription{{ID: "erin-sub", BuyerID: "erin", SkuID: "sku", Status: "Enabled"}}}
	s := &syncState{policy: p, base: p.DeepCopy(), now: now, directory: dir}

	if err := r.trackSubscriptions(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got := p.Status.Subscriptions
	if len(got.Handovers) != 0 || p.Status.Counters.Takeovers+p.Status.Counters.Cancellations != 0 {
		t.Errorf("a subscription still Enabled in Graph did not leave its buyer, got handovers %+v", got.Handovers)
	}
	if dir.userReads != 0 {
		t.Errorf("no user read without a change of hands, got %d", dir.userReads)
	}
	if len(got.SelfService) != 1 || got.SelfService[0].ID != "erin-sub" {
		t.Errorf("the entry is kept for the next run to decide, got %+v", got.SelfService)
	}
}
