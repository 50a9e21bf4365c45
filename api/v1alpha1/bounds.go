package v1alpha1

// Bounds of status as the CRD schema states them (the markers on the types;
// TestStatusBounds checks that they agree). The controller keeps everything
// it copies from Microsoft within them, so the API server never refuses a
// status patch.
const (
	// MaxProducts bounds status.products; MaxOfferTypes status.offerTypes.
	MaxProducts   = 256
	MaxOfferTypes = 8
	// MaxTenantSettings bounds status.tenantSettings.
	MaxTenantSettings = 4
	// MaxDriftHistory bounds status.driftHistory.
	MaxDriftHistory = 20
	// MaxSelfService and MaxHandovers bound status.subscriptions.selfService
	// and status.subscriptions.handovers.
	MaxSelfService = 50
	MaxHandovers   = 20
	// MaxConditions bounds status.conditions; MaxConditionMessage one message.
	MaxConditions       = 16
	MaxConditionMessage = 32768

	// MaxIDLength bounds product IDs, subscription, SKU and user IDs.
	MaxIDLength = 64
	// MaxNameLength bounds a product's name.
	MaxNameLength = 256
	// MaxValueLength bounds observed, adopted and pending policy values and
	// the values of a drift record.
	MaxValueLength = 64
	// MaxRejectedLength bounds a product's rejected message.
	MaxRejectedLength = 1024
	// MaxSkuPartNumberLength bounds a subscription's skuPartNumber.
	MaxSkuPartNumberLength = 128
	// MaxSubscriptionStatusLength bounds a subscription's status.
	MaxSubscriptionStatusLength = 32
	// MaxEvidenceLength bounds a handover's evidence.
	MaxEvidenceLength = 512
	// MaxRequestedAtLength bounds status.lastHandledReconcileAt, a copy of
	// the reconcile-now annotation.
	MaxRequestedAtLength = 128
)
