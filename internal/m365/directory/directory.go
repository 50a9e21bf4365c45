// Package directory holds what Microsoft Graph says about a tenant's
// directory (subscriptions, subscribed SKUs, users' licences) as plain
// values. It imports nothing but the standard library, so code that decides
// about them (internal/tracking) builds and fuzzes without the Graph SDK;
// internal/m365/graph fills them in.
package directory

import "time"

// Subscription is a company subscription (GET /directory/subscriptions).
type Subscription struct {
	ID, CommerceSubscriptionID, SkuID, SkuPartNumber string
	// Status is Enabled, Warning, Suspended, Deleted or LockedOut.
	Status        string
	TotalLicenses int
	IsTrial       bool
	Created       time.Time
	// NextLifecycle is the next renewal or status change, nil if unknown.
	NextLifecycle                     *time.Time
	OwnerID, OwnerTenantID, OwnerType string
}

// SubscribedSku is one SKU of one billing account (GET /subscribedSkus).
type SubscribedSku struct {
	SkuID, SkuPartNumber, AccountID, AccountName string
	// Enabled, Suspended, Warning and LockedOut are the prepaid units by state.
	Enabled, Suspended, Warning, LockedOut int
	// Consumed is the number of assigned licences.
	Consumed                    int
	SubscriptionIDs             []string
	CapabilityStatus, AppliesTo string
}

// LicenseState is one of a user's licence assignments.
type LicenseState struct {
	SkuID string
	// AssignedByGroup is the group's object ID for group-based assignment,
	// empty for a direct assignment.
	AssignedByGroup string
	State           string
}

// User is the licence view of one user.
type User struct {
	ID, UserPrincipalName string
	AssignedSkuIDs        []string
	LicenseStates         []LicenseState
}
