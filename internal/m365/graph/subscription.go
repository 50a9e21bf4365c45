package graph

import (
	"context"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/directory"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// OpGetSubscription names GetSubscription in an m365.Error.
const OpGetSubscription = "get subscription"

// GetSubscription reads one company subscription by its ID
// (GET /directory/subscriptions/{id}). A list can arrive short or empty
// during an incident, so absence from a list proves nothing; this read does:
// a subscription that no longer exists fails with an *m365.Error of Kind
// NotFound.
func (t Tenant) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if strings.TrimSpace(id) == "" {
		return Subscription{}, &m365.Error{Op: OpGetSubscription, Kind: m365.BadRequest, Reason: "empty subscription ID"}
	}
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return Subscription{}, c.classify(ctx, OpGetSubscription, tenantID, err, nil)
	}
	rb := directory.NewSubscriptionsRequestBuilderInternal(s.pathParams(), s.adapter).ByCompanySubscriptionId(id)
	sub, err := rb.Get(ctx, nil)
	if err == nil && sub == nil {
		err = errEmptyResponse
	}
	if err != nil {
		return Subscription{}, c.classify(ctx, OpGetSubscription, tenantID, err, s.rec)
	}
	out := toSubscription(sub)
	boundSubscription(&out) // cut to the CRD's bounds, as listed ones are
	return out, nil
}
