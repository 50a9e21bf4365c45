package graph

import (
	"time"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// toSubscription copies a companySubscription; absent fields stay zero.
func toSubscription(m models.CompanySubscriptionable) Subscription {
	return Subscription{
		ID:                     deref(m.GetId()),
		CommerceSubscriptionID: deref(m.GetCommerceSubscriptionId()),
		SkuID:                  deref(m.GetSkuId()),
		SkuPartNumber:          deref(m.GetSkuPartNumber()),
		Status:                 deref(m.GetStatus()),
		TotalLicenses:          int(deref(m.GetTotalLicenses())),
		IsTrial:                deref(m.GetIsTrial()),
		Created:                deref(m.GetCreatedDateTime()),
		NextLifecycle:          copyTime(m.GetNextLifecycleDateTime()),
		OwnerID:                deref(m.GetOwnerId()),
		OwnerTenantID:          deref(m.GetOwnerTenantId()),
		OwnerType:              deref(m.GetOwnerType()),
	}
}

// toSubscribedSku copies a subscribedSku; absent fields stay zero.
func toSubscribedSku(m models.SubscribedSkuable) SubscribedSku {
	s := SubscribedSku{
		SkuID:            uuidString(m.GetSkuId()),
		SkuPartNumber:    deref(m.GetSkuPartNumber()),
		AccountID:        deref(m.GetAccountId()),
		AccountName:      deref(m.GetAccountName()),
		Consumed:         int(deref(m.GetConsumedUnits())),
		SubscriptionIDs:  append([]string(nil), m.GetSubscriptionIds()...),
		CapabilityStatus: deref(m.GetCapabilityStatus()),
		AppliesTo:        deref(m.GetAppliesTo()),
	}
	if p := m.GetPrepaidUnits(); p != nil {
		s.Enabled = int(deref(p.GetEnabled()))
		s.Suspended = int(deref(p.GetSuspended()))
		s.Warning = int(deref(p.GetWarning()))
		s.LockedOut = int(deref(p.GetLockedOut()))
	}
	return s
}

// toUser copies a user's ID, UPN and licence assignments.
func toUser(m models.Userable) User {
	u := User{ID: deref(m.GetId()), UserPrincipalName: deref(m.GetUserPrincipalName())}
	for _, l := range m.GetAssignedLicenses() {
		if l != nil && l.GetSkuId() != nil {
			u.AssignedSkuIDs = append(u.AssignedSkuIDs, uuidString(l.GetSkuId()))
		}
	}
	for _, s := range m.GetLicenseAssignmentStates() {
		if s == nil {
			continue
		}
		u.LicenseStates = append(u.LicenseStates, LicenseState{
			SkuID:           uuidString(s.GetSkuId()),
			AssignedByGroup: deref(s.GetAssignedByGroup()),
			State:           deref(s.GetState()),
		})
	}
	return u
}

// boundSubscription cuts s's fields to the CRD's bounds (an over-long
// secondary ID is cleared: a cut ID names another object) and tells whether
// it changed any. The ID itself was checked by m365.Keys.
func boundSubscription(s *Subscription) bool {
	var b m365.Bounder
	b.Text(&s.SkuPartNumber, m365.MaxSkuPartNumberLength)
	b.Text(&s.Status, m365.MaxStatusLength)
	b.Text(&s.OwnerType, m365.MaxStatusLength)
	b.ID(&s.CommerceSubscriptionID)
	b.ID(&s.SkuID)
	b.ID(&s.OwnerID)
	b.ID(&s.OwnerTenantID)
	return b.Changed
}

// boundSubscribedSku cuts s's fields to the CRD's bounds, dropping
// subscription IDs that are over-long, and tells whether it changed any.
func boundSubscribedSku(s *SubscribedSku) bool {
	var b m365.Bounder
	b.Text(&s.SkuPartNumber, m365.MaxSkuPartNumberLength)
	b.Text(&s.AccountName, m365.MaxNameLength)
	b.Text(&s.CapabilityStatus, m365.MaxStatusLength)
	b.Text(&s.AppliesTo, m365.MaxStatusLength)
	b.ID(&s.AccountID)
	ids := s.SubscriptionIDs[:0]
	for _, id := range s.SubscriptionIDs {
		if b.ID(&id); id != "" {
			ids = append(ids, id)
		}
	}
	s.SubscriptionIDs = ids
	return b.Changed
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// copyTime returns a copy of *t, or nil.
func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// uuidString formats a GUID, or "" for nil.
func uuidString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}
