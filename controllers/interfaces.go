package controllers

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// The reconciler owns these interfaces; internal/m365 provides the real
// implementations (wired in wire.go), the tests the simulator or tiny fakes.
// A run connects once, after loading credentials (crossplane's Connect): the
// per-tenant handles carry the tenant and the credential, so no call does.

// PolicyAPI connects to the self-service purchase policy API (licensing).
type PolicyAPI interface {
	// For returns the API of tenantID, every call authenticated with cred.
	For(tenantID string, cred azcore.TokenCredential) TenantPolicies
}

// TenantPolicies reads and writes one tenant's self-service purchase policy.
// Writes are idempotent: setting a value twice has the effect of once. Lists
// hold unique, bounded items; m365.ListInfo counts what the answer held
// beyond them (duplicates, invalid items, cut names). A write returns the
// item Microsoft answered with, nil when the answer carried none; the answer
// is Microsoft's word, a later list confirms it.
type TenantPolicies interface {
	ListProducts(ctx context.Context) ([]licensing.Item, m365.ListInfo, error)
	ListOfferTypes(ctx context.Context) ([]licensing.Item, m365.ListInfo, error)
	SetProduct(ctx context.Context, productID, value string) (*licensing.Item, error)
	SetOfferType(ctx context.Context, offerType, value string) (*licensing.Item, error)
}

// DirectoryAPI connects to Microsoft Graph.
type DirectoryAPI interface {
	// For returns the Graph API of tenantID, every call authenticated with cred.
	For(tenantID string, cred azcore.TokenCredential) TenantDirectory
}

// TenantDirectory reads one tenant's subscriptions and licences. Read only.
// Lists are unique by ID across pages and bounded, like TenantPolicies'.
type TenantDirectory interface {
	ListSubscriptions(ctx context.Context) ([]graph.Subscription, m365.ListInfo, error)
	ListSubscribedSkus(ctx context.Context) ([]graph.SubscribedSku, m365.ListInfo, error)
	// GetSubscription reads one subscription; one that no longer exists
	// fails with an *m365.Error of Kind NotFound.
	GetSubscription(ctx context.Context, id string) (graph.Subscription, error)
	GetUser(ctx context.Context, userID string) (graph.User, error)
}

// SettingsAPI connects to the tenant-wide acquisition settings (Microsoft
// Graph).
type SettingsAPI interface {
	// For returns the settings API of tenantID, every call authenticated with cred.
	For(tenantID string, cred azcore.TokenCredential) TenantSettingsAPI
}

// TenantSettingsAPI reads and writes one tenant's acquisition settings, one
// Graph resource per pair of calls. A read returns the properties the
// answer carried; a write sends exactly the properties it is given and is
// idempotent. The appsAndServices calls go to Graph beta: a cloud without
// it fails them with graph.NotOffered.
type TenantSettingsAPI interface {
	GetAuthorizationPolicy(ctx context.Context) (graph.Settings, error)
	UpdateAuthorizationPolicy(ctx context.Context, set graph.Settings) error
	GetAppsAndServices(ctx context.Context) (graph.Settings, error)
	UpdateAppsAndServices(ctx context.Context, set graph.Settings) error
}

// CredentialSource turns credential material into a token credential, cached
// by tenant, client and a hash of the material.
type CredentialSource interface {
	Credential(m auth.Material) (azcore.TokenCredential, error)
}
