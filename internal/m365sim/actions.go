package m365sim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// SetPolicy sets a product's policy value by hand, as an admin in the admin
// center (or PowerShell) would.
func (s *Server) SetPolicy(tenantID, productID, value string) error {
	if !validPolicyValue(value) {
		return fmt.Errorf("%w: policy value %q", ErrInvalid, value)
	}
	return s.withTenant(tenantID, func(t *tenant) error {
		p, ok := t.productIdx[strings.ToUpper(productID)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrProductNotFound, productID)
		}
		p.PolicyValue = value
		return nil
	})
}

// Policy returns a product's policy value.
func (s *Server) Policy(tenantID, productID string) (string, error) {
	var v string
	err := s.withTenant(tenantID, func(t *tenant) error {
		p, ok := t.productIdx[strings.ToUpper(productID)]
		if !ok {
			return fmt.Errorf("%w: %s", ErrProductNotFound, productID)
		}
		v = p.PolicyValue
		return nil
	})
	return v, err
}

// Products returns a tenant's products with their policy values.
func (s *Server) Products(tenantID string) ([]Product, error) {
	var out []Product
	err := s.withTenant(tenantID, func(t *tenant) error {
		for _, p := range t.products {
			out = append(out, *p)
		}
		return nil
	})
	return out, err
}

// AddProduct adds a product, as Microsoft does over time; it starts as
// Enabled unless PolicyValue says otherwise.
func (s *Server) AddProduct(tenantID string, p Product) error {
	if p.ReplicationLag < 0 {
		return fmt.Errorf("%w: negative replication lag", ErrInvalid)
	}
	return s.withTenant(tenantID, func(t *tenant) error {
		if err := t.addProduct(p); err != nil {
			return err
		}
		if p.ReplicationLag > 0 {
			if t.putReadyAt == nil {
				t.putReadyAt = map[string]time.Time{}
			}
			t.putReadyAt[strings.ToUpper(p.ID)] = s.now().Add(p.ReplicationLag)
		}
		return nil
	})
}

// SetOfferTypePolicy sets an offer type's policy value by hand.
func (s *Server) SetOfferTypePolicy(tenantID, offerType, value string) error {
	if !validPolicyValue(value) {
		return fmt.Errorf("%w: policy value %q", ErrInvalid, value)
	}
	return s.withTenant(tenantID, func(t *tenant) error {
		k, ok := t.offerType(offerType)
		if !ok {
			return fmt.Errorf("%w: offer type %s", ErrProductNotFound, offerType)
		}
		t.offerTypes[k] = value
		return nil
	})
}

// offerType finds an offer type case-insensitively.
func (t *tenant) offerType(name string) (string, bool) {
	for _, o := range OfferTypes {
		if strings.EqualFold(o, name) {
			return o, true
		}
	}
	return "", false
}

// PurchaseRequest is a self-service purchase (or trial) by a user.
type PurchaseRequest struct {
	// UserID is the buyer's object ID; empty = found by UserPrincipalName or created.
	UserID string `json:"userId,omitempty"`
	// UserPrincipalName of the buyer; empty = generated.
	UserPrincipalName string `json:"userPrincipalName,omitempty"`
	// SkuPartNumber (or SKU ID) from Catalogue, e.g. Microsoft_365_Copilot.
	SkuPartNumber string `json:"skuPartNumber"`
	// Seats bought, default 1; the buyer gets one of them.
	Seats int `json:"seats,omitempty"`
	// Trial makes a trial subscription (isTrial true).
	Trial bool `json:"trial,omitempty"`
	// Created is the purchase time; zero = now.
	Created time.Time `json:"created,omitzero"`
	// IgnorePolicy buys even if the product's policy (or, on another path,
	// the tenant setting) forbids it (by default a Disabled product refuses,
	// and OnlyTrialsWithoutPaymentMethod refuses anything but a trial, with
	// ErrPurchaseBlocked).
	IgnorePolicy bool `json:"ignorePolicy,omitempty"`
	// Path is how the user acquires it: PathSelfService (default),
	// PathOrganizationTrial, PathEmailSignup or PathOfficeStore (acquisition.go).
	Path string `json:"path,omitempty"`
}

// Purchase makes a self-service purchase: it creates the buyer if needed, a
// subscription with ownerType "User" and ownerId the buyer, paid from a new
// billing account of the buyer ("<upn> (self-service)", or the path's label),
// and gives the buyer a seat. nextLifecycleDateTime is Created + 1 month.
func (s *Server) Purchase(tenantID string, p PurchaseRequest) (Subscription, error) {
	k, ok := LookupSKU(p.SkuPartNumber)
	if !ok {
		return Subscription{}, fmt.Errorf("%w: unknown SKU %q", ErrInvalid, p.SkuPartNumber)
	}
	if p.Seats <= 0 {
		p.Seats = 1
	}
	created := p.Created
	if created.IsZero() {
		created = s.now()
	}
	created = created.UTC().Truncate(time.Second)
	subID, commerceID, accountID, newUserID := s.newGUID(), s.newGUID(), s.newGUID(), s.newGUID()
	var out Subscription
	err := s.withTenant(tenantID, func(t *tenant) error {
		p, err := t.admitAcquisition(k, p)
		if err != nil {
			return err
		}
		buyer := t.buyer(p, newUserID)
		sub := &Subscription{
			ID: subID, CommerceSubscriptionID: commerceID, SkuID: k.SkuID, SkuPartNumber: k.SkuPartNumber,
			Status: StatusEnabled, TotalLicenses: p.Seats, IsTrial: p.Trial,
			CreatedDateTime: created, NextLifecycleDateTime: created.AddDate(0, 1, 0),
			OwnerID: buyer.ID, OwnerTenantID: t.id, OwnerType: "User", ServiceStatus: servicePlans(k),
			AccountID: accountID, AccountName: buyer.UPN + " (" + acquisitionAccountLabels[p.Path] + ")", AssignedUsers: []string{},
			SelfService: true, AcquisitionPath: p.Path,
		}
		t.addSubscription(sub)
		t.assign(sub, buyer.ID)
		out = sub.clone()
		return nil
	})
	return out, err
}

// purchaseAllowed applies the product's self-service purchase policy.
func (t *tenant) purchaseAllowed(k SKU, p PurchaseRequest) error {
	if p.IgnorePolicy || k.ProductID == "" {
		return nil
	}
	prod, ok := t.productIdx[k.ProductID]
	if !ok {
		return nil
	}
	switch {
	case prod.PolicyValue == PolicyDisabled:
		return fmt.Errorf("%w: %s is %s", ErrPurchaseBlocked, prod.ID, prod.PolicyValue)
	case prod.PolicyValue == PolicyTrialsOnly && !p.Trial:
		return fmt.Errorf("%w: %s allows only trials", ErrPurchaseBlocked, prod.ID)
	}
	return nil
}

// buyer finds or creates the purchasing user.
func (t *tenant) buyer(p PurchaseRequest, newID string) *user {
	for _, key := range []string{p.UserID, p.UserPrincipalName} {
		if key == "" {
			continue
		}
		if u := t.findUser(key); u != nil {
			return u
		}
	}
	id := p.UserID
	if id == "" {
		id = newID
	}
	upn := p.UserPrincipalName
	if upn == "" {
		upn = "user-" + id[:8] + "@" + t.domain
	}
	return t.addUser(id, upn, strings.Split(upn, "@")[0])
}

// Renew renews a subscription now: its latest renewal becomes now and
// nextLifecycleDateTime now + 1 month (the refund windows restart).
func (s *Server) Renew(tenantID, subscriptionID string) (Subscription, error) {
	return s.mutateSubscription(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		now := s.now().UTC().Truncate(time.Second)
		sub.LastRenewalDateTime = &now
		sub.NextLifecycleDateTime = now.AddDate(0, 1, 0)
		sub.Status, sub.Ending = StatusEnabled, false
		return nil
	})
}

// SetSubscriptionStatus sets a subscription's status by hand (e.g. Warning,
// Suspended): users keep their seats and the status stays until changed
// (no lifecycle schedule; see Cancel and FailPayment for those).
func (s *Server) SetSubscriptionStatus(tenantID, subscriptionID, status string) (Subscription, error) {
	if !slices.Contains([]string{StatusEnabled, StatusWarning, StatusSuspended, StatusDeleted, StatusLockedOut}, status) {
		return Subscription{}, fmt.Errorf("%w: status %q", ErrInvalid, status)
	}
	return s.mutateSubscriptionAny(tenantID, subscriptionID, func(_ *tenant, sub *Subscription) error {
		sub.Status, sub.Ending = status, false
		return nil
	})
}

// mutateSubscription applies fn to a subscription that is not deleted.
func (s *Server) mutateSubscription(tenantID, subscriptionID string, fn func(*tenant, *Subscription) error) (Subscription, error) {
	return s.mutateSubscriptionAny(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		if sub.Status == StatusDeleted {
			return fmt.Errorf("%w: %s", ErrSubscriptionDeleted, sub.ID)
		}
		return fn(t, sub)
	})
}

func (s *Server) mutateSubscriptionAny(tenantID, subscriptionID string, fn func(*tenant, *Subscription) error) (Subscription, error) {
	var out Subscription
	err := s.withTenant(tenantID, func(t *tenant) error {
		sub, ok := t.subs[subscriptionID]
		if !ok {
			return fmt.Errorf("%w: %s", ErrSubscriptionNotFound, subscriptionID)
		}
		if err := fn(t, sub); err != nil {
			return err
		}
		out = sub.clone()
		return nil
	})
	return out, err
}

// Subscriptions returns a tenant's subscriptions in creation order.
func (s *Server) Subscriptions(tenantID string) ([]Subscription, error) {
	var out []Subscription
	err := s.withTenant(tenantID, func(t *tenant) error {
		for _, id := range t.subOrder {
			out = append(out, t.subs[id].clone())
		}
		return nil
	})
	return out, err
}

// User is a directory user as the admin API shows it.
type User struct {
	ID                string   `json:"id"`
	UserPrincipalName string   `json:"userPrincipalName"`
	DisplayName       string   `json:"displayName"`
	Roles             []string `json:"roles,omitempty"`
	// SkuIDs are the SKUs the user is licensed for (deduplicated).
	SkuIDs []string `json:"skuIds"`
	// SubscriptionIDs are the subscriptions whose seats the user holds.
	SubscriptionIDs []string `json:"subscriptionIds"`
}

// Users returns a tenant's users in creation order.
func (s *Server) Users(tenantID string) ([]User, error) {
	var out []User
	err := s.withTenant(tenantID, func(t *tenant) error {
		for _, id := range t.userOrder {
			out = append(out, t.userView(t.users[id]))
		}
		return nil
	})
	return out, err
}

func (t *tenant) userView(u *user) User {
	return User{ID: u.ID, UserPrincipalName: u.UPN, DisplayName: u.DisplayName, Roles: slices.Clone(u.Roles),
		SkuIDs: t.userSkus(u), SubscriptionIDs: slices.Clone(u.Seats)}
}

// userSkus returns the distinct SKU IDs a user holds a seat of.
func (t *tenant) userSkus(u *user) []string {
	out := []string{}
	for _, sid := range u.Seats {
		if sub, ok := t.subs[sid]; ok && !slices.Contains(out, sub.SkuID) {
			out = append(out, sub.SkuID)
		}
	}
	return out
}
