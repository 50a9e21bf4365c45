package controllers

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// The reconciler owns these interfaces; internal/m365 provides the real
// implementations, the tests the simulator or tiny fakes.

// PolicyAPI reads and writes self-service purchase policy (the licensing API).
// Writes are idempotent: setting a value twice has the effect of once.
type PolicyAPI interface {
	ListProducts(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]licensing.Item, error)
	ListOfferTypes(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]licensing.Item, error)
	SetProduct(ctx context.Context, tenantID string, cred azcore.TokenCredential, productID, value string) error
	SetOfferType(ctx context.Context, tenantID string, cred azcore.TokenCredential, offerType, value string) error
}

// DirectoryAPI reads subscriptions and licences (Microsoft Graph). Read only.
type DirectoryAPI interface {
	ListSubscriptions(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]graph.Subscription, error)
	ListSubscribedSkus(ctx context.Context, tenantID string, cred azcore.TokenCredential) ([]graph.SubscribedSku, error)
	GetUser(ctx context.Context, tenantID string, cred azcore.TokenCredential, userID string) (graph.User, error)
}

// CredentialSource turns credential material into a token credential, cached
// by tenant, client and a hash of the material.
type CredentialSource interface {
	Credential(m auth.Material) (azcore.TokenCredential, error)
}
