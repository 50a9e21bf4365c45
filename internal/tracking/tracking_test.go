package tracking

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/directory"
)

// Billing accounts as Graph returns them.
const (
	orgAcct   = "org-account"
	selfAcct1 = "erin-account"
)

func graphSub(id, sku, ownerType string, seats int) directory.Subscription {
	return directory.Subscription{ID: id, SkuID: sku, OwnerType: ownerType, TotalLicenses: seats, Status: "Enabled"}
}

func graphSku(account, sku string, enabled, consumed int, subIDs ...string) directory.SubscribedSku {
	return directory.SubscribedSku{AccountID: account, SkuID: sku, Enabled: enabled, Consumed: consumed, SubscriptionIDs: subIDs}
}

func TestDirectoryViewSeats(t *testing.T) {
	type seats struct{ Free, OrgInUse map[string]int }
	cases := map[string]struct {
		reason string
		skus   []directory.SubscribedSku
		want   seats
	}{
		"self-service seats are not counted": {
			reason: "the 8-seat self-service purchase has 7 unused seats, but only the organisation's 10-3 can take it over",
			skus: []directory.SubscribedSku{
				graphSku(orgAcct, skuCopilot, 10, 3, "org-copilot"), graphSku(selfAcct1, skuCopilot, 8, 1, "erin"),
				graphSku(orgAcct, skuSPB, 25, 5, "org-spb"),
			},
			want: seats{Free: map[string]int{skuCopilot: 7, skuSPB: 20}, OrgInUse: map[string]int{skuCopilot: 3, skuSPB: 5}},
		},
		"warning seats are free, suspended ones are not": {
			reason: "a subscription in its grace period (Warning) can still take users; a suspended one cannot",
			skus:   []directory.SubscribedSku{{AccountID: orgAcct, SkuID: skuCopilot, Enabled: 5, Warning: 2, Suspended: 4, Consumed: 3, SubscriptionIDs: []string{"org-copilot"}}},
			want:   seats{Free: map[string]int{skuCopilot: 4}, OrgInUse: map[string]int{skuCopilot: 3}},
		},
		"over-assigned SKU has no free seat": {
			reason: "more consumed than prepaid units never yields negative capacity",
			skus:   []directory.SubscribedSku{graphSku(orgAcct, skuCopilot, 2, 5, "org-copilot")},
			want:   seats{Free: map[string]int{skuCopilot: 0}, OrgInUse: map[string]int{skuCopilot: 5}},
		},
		"only self-service accounts": {
			reason: "no organisation seats of the SKU at all",
			skus:   []directory.SubscribedSku{graphSku(orgAcct, skuSPB, 25, 5, "org-spb"), graphSku(selfAcct1, skuCopilot, 3, 1, "erin")},
			want:   seats{Free: map[string]int{skuSPB: 20}, OrgInUse: map[string]int{skuSPB: 5}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// org-copilot, org-spb and erin are listed; the organisation's subscriptions are company-owned.
			subs := []directory.Subscription{graphSub("org-copilot", skuCopilot, "Company", 10), graphSub("org-spb", skuSPB, "Company", 25), graphSub("erin", skuCopilot, "User", 8)}
			d := NewView(subs, tc.skus)
			if diff := cmp.Diff(tc.want, seats{d.free, d.orgInUse}); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
