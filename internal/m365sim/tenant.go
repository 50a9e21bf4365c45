package m365sim

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// TenantConfig describes a tenant to add.
type TenantConfig struct {
	// ID is the tenant GUID; empty = generated from the seed.
	ID string `json:"id,omitempty"`
	// Name is the organisation name; empty = "Tenant <n>".
	Name string `json:"name,omitempty"`
	// Products replaces the default product catalogue; PolicyValue defaults to Enabled.
	Products []Product `json:"products,omitempty"`
	// WithSampleDirectory seeds an organisation billing account with a
	// 25-seat Business Premium subscription (ownerType "User") and a 10-seat
	// Copilot subscription with 3 seats used, plus five licensed users.
	WithSampleDirectory bool `json:"withSampleDirectory,omitempty"`
	// Settings overrides the acquisition settings (all true, appsAndServices
	// Available, by default).
	Settings *TenantSettingsUpdate `json:"settings,omitempty"`
	// Customers makes the tenant a partner with one active admin
	// relationship per entry.
	Customers []CustomerRequest `json:"customers,omitempty"`
	// WithoutServicePrincipals lists resource app IDs (ResourceLicensing,
	// ResourceGraph) whose service principal the tenant lacks: token
	// requests for them fail with AADSTS500011 (serviceprincipals.go).
	WithoutServicePrincipals []string `json:"withoutServicePrincipals,omitempty"`
}

// TenantInfo describes a tenant.
type TenantInfo struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Domain         string `json:"domain"`
	OrgAccountID   string `json:"orgAccountId"`
	OrgAccountName string `json:"orgAccountName"`
	Users          int    `json:"users"`
	Subscriptions  int    `json:"subscriptions"`
	Products       int    `json:"products"`
}

// Subscription is a commercial subscription: the Graph companySubscription
// fields plus what the simulator tracks about it (billing account, licensed
// users, whether it was bought self-service).
type Subscription struct {
	ID                     string            `json:"id"`
	CommerceSubscriptionID string            `json:"commerceSubscriptionId"`
	SkuID                  string            `json:"skuId"`
	SkuPartNumber          string            `json:"skuPartNumber"`
	Status                 string            `json:"status"`
	TotalLicenses          int               `json:"totalLicenses"`
	IsTrial                bool              `json:"isTrial"`
	CreatedDateTime        time.Time         `json:"createdDateTime"`
	NextLifecycleDateTime  time.Time         `json:"nextLifecycleDateTime"`
	OwnerID                string            `json:"ownerId"`
	OwnerTenantID          string            `json:"ownerTenantId"`
	OwnerType              string            `json:"ownerType"`
	ServiceStatus          []ServicePlanInfo `json:"serviceStatus"`

	// AccountID and AccountName are the billing account that pays for it.
	AccountID   string `json:"accountId"`
	AccountName string `json:"accountName"`
	// AssignedUsers are the object IDs of the users holding one of its seats.
	AssignedUsers []string `json:"assignedUsers"`
	// SelfService is true for subscriptions made by Purchase.
	SelfService bool `json:"selfService"`
	// AcquisitionPath is the PurchaseRequest.Path that made it ("" for
	// organisation subscriptions).
	AcquisitionPath string `json:"acquisitionPath,omitempty"`
	// LastRenewalDateTime is the latest Renew (nil if never renewed).
	LastRenewalDateTime *time.Time `json:"lastRenewalDateTime,omitempty"`
	// Ending: the subscription was cancelled (or its payment failed) and
	// moves on at NextLifecycleDateTime, Warning → Suspended → Deleted.
	Ending bool `json:"ending,omitempty"`
}

// Subscription statuses.
const (
	StatusEnabled   = "Enabled"
	StatusWarning   = "Warning"
	StatusSuspended = "Suspended"
	StatusDeleted   = "Deleted"
	StatusLockedOut = "LockedOut"
)

func (s *Subscription) clone() Subscription {
	c := *s
	c.ServiceStatus = slices.Clone(s.ServiceStatus)
	c.AssignedUsers = slices.Clone(s.AssignedUsers)
	if s.LastRenewalDateTime != nil {
		t := *s.LastRenewalDateTime
		c.LastRenewalDateTime = &t
	}
	return c
}

func (s *Subscription) freeSeats() int { return s.TotalLicenses - len(s.AssignedUsers) }

// user is a directory user.
type user struct {
	ID          string
	UPN         string
	DisplayName string
	Roles       []string
	// Seats are the IDs of the subscriptions whose licence the user holds.
	Seats []string
}

// tenant is one simulated tenant. Its own mutex guards everything in it, so
// requests for different tenants never contend.
type tenant struct {
	mu sync.Mutex

	id, name, domain             string
	orgAccountID, orgAccountName string

	products   []*Product
	productIdx map[string]*Product // key: upper-case product ID
	offerTypes map[string]string   // offer type → policy value

	apps    map[string]*appState    // key: lower-case client ID
	refresh map[string]refreshGrant // key: refresh token

	users     map[string]*user  // key: object ID
	userOrder []string          // object IDs in creation order
	upnIdx    map[string]string // lower-case UPN → object ID

	subs     map[string]*Subscription
	subOrder []string

	devices     deviceFlows       // devicecode.go
	noPrincipal missingPrincipals // serviceprincipals.go
	settings    tenantSettings    // settings.go
	partner     partnerState      // gdap.go

	faults    []*faultState
	log       requestLog
	logCap    int                    // bound of log.entries
	inFlight  time.Duration          // Options.InFlight
	throttled map[string]retryWindow // endpoint (or throttling bucket) → the Retry-After sent by us

	limiters   map[limiterKey]*limiter // throttling buckets
	stale      map[string]staleRead    // upper-case product ID → value reads still show
	putReadyAt map[string]time.Time    // upper-case product ID → first time a PUT finds it (replication lag)
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

// AddTenant adds a tenant. Products default to DefaultProducts, all Enabled.
func (s *Server) AddTenant(cfg TenantConfig) (*TenantInfo, error) {
	id := lower(cfg.ID)
	if id == "" {
		id = s.newGUID()
	}
	s.mu.Lock()
	if _, ok := s.tenants[id]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrTenantExists, id)
	}
	n := len(s.order) + 1
	s.mu.Unlock()

	if err := cfg.Settings.validate(); err != nil {
		return nil, err
	}
	noPrincipal, err := newMissingPrincipals(cfg.WithoutServicePrincipals)
	if err != nil {
		return nil, err
	}
	t := s.newTenant(id, cfg, n)
	t.noPrincipal = noPrincipal
	if cfg.WithSampleDirectory {
		s.seedDirectory(t)
	}
	for _, c := range cfg.Customers { // t is not shared yet
		rel, err := s.newRelationship(id, c)
		if err != nil {
			return nil, err
		}
		t.partner.rels = append(t.partner.rels, rel)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tenants[id]; ok {
		return nil, fmt.Errorf("%w: %s", ErrTenantExists, id)
	}
	s.tenants[id] = t
	s.order = append(s.order, id)
	return t.info(), nil
}

func (s *Server) newTenant(id string, cfg TenantConfig, n int) *tenant {
	name := cfg.Name
	if name == "" {
		name = fmt.Sprintf("Tenant %d", n)
	}
	slug := strings.Trim(nonAlnum.ReplaceAllString(strings.ToLower(name), ""), "-")
	if slug == "" {
		slug = "tenant" + id[:8]
	}
	t := &tenant{
		id: id, name: name, domain: slug + ".onmicrosoft.com",
		orgAccountID: s.newGUID(), orgAccountName: name,
		productIdx: map[string]*Product{}, offerTypes: map[string]string{},
		apps: map[string]*appState{}, refresh: map[string]refreshGrant{},
		users: map[string]*user{}, upnIdx: map[string]string{},
		subs: map[string]*Subscription{}, throttled: map[string]retryWindow{}, logCap: s.opts.MaxLogEntries, inFlight: s.opts.InFlight,
		settings: newTenantSettings(id),
	}
	t.settings.apply(cfg.Settings)
	products := cfg.Products
	if len(products) == 0 {
		products = DefaultProducts()
	}
	for _, p := range products {
		_ = t.addProduct(p)
	}
	for _, o := range OfferTypes {
		t.offerTypes[o] = PolicyEnabled
	}
	return t
}

// seedDirectory creates the organisation's subscriptions and users.
func (s *Server) seedDirectory(t *tenant) {
	now := s.now().UTC().Truncate(time.Second)
	names := []string{"admin", "alice", "bob", "carol", "dave"}
	var ids []string
	for _, n := range names {
		u := t.addUser(s.newGUID(), n+"@"+t.domain, strings.ToUpper(n[:1])+n[1:])
		ids = append(ids, u.ID)
	}
	t.users[ids[0]].Roles = []string{"Global Administrator"}
	created := now.AddDate(0, -6, 0)
	spb := s.newOrgSubscription(t, SkuBusinessPremium, 25, ids[0], created)
	cop := s.newOrgSubscription(t, SkuCopilot, 10, ids[0], created.AddDate(0, 3, 0))
	for _, id := range ids {
		t.assign(spb, id)
	}
	for _, id := range ids[:3] {
		t.assign(cop, id)
	}
}

// newOrgSubscription adds an admin-bought subscription paid by the
// organisation's billing account. It carries ownerType "User" (see the
// INFERRED rule in docs/microsoft-api.md, "List company subscriptions").
func (s *Server) newOrgSubscription(t *tenant, part string, seats int, owner string, created time.Time) *Subscription {
	k, _ := LookupSKU(part)
	sub := &Subscription{
		ID: s.newGUID(), CommerceSubscriptionID: s.newGUID(),
		SkuID: k.SkuID, SkuPartNumber: k.SkuPartNumber, Status: StatusEnabled,
		TotalLicenses: seats, CreatedDateTime: created, NextLifecycleDateTime: nextYearly(created, s.now()),
		OwnerID: owner, OwnerTenantID: t.id, OwnerType: "User", ServiceStatus: servicePlans(k),
		AccountID: t.orgAccountID, AccountName: t.orgAccountName, AssignedUsers: []string{},
	}
	t.addSubscription(sub)
	return sub
}

// nextYearly returns the first anniversary of created after now.
func nextYearly(created, now time.Time) time.Time {
	n := created.AddDate(1, 0, 0)
	for !n.After(now) {
		n = n.AddDate(1, 0, 0)
	}
	return n
}

func (t *tenant) info() *TenantInfo {
	return &TenantInfo{ID: t.id, Name: t.name, Domain: t.domain, OrgAccountID: t.orgAccountID, OrgAccountName: t.orgAccountName,
		Users: len(t.users), Subscriptions: len(t.subs), Products: len(t.products)}
}

func (t *tenant) addProduct(p Product) error {
	key := strings.ToUpper(p.ID)
	if key == "" {
		return fmt.Errorf("%w: product ID is empty", ErrInvalid)
	}
	if _, ok := t.productIdx[key]; ok {
		return fmt.Errorf("%w: %s", ErrProductExists, p.ID)
	}
	if p.PolicyValue == "" {
		p.PolicyValue = PolicyEnabled
	}
	if !validPolicyValue(p.PolicyValue) {
		return fmt.Errorf("%w: policy value %q", ErrInvalid, p.PolicyValue)
	}
	if p.Name == "" {
		p.Name = p.ID
	}
	cp := p
	cp.ReplicationLag = 0 // kept in putReadyAt
	t.products = append(t.products, &cp)
	t.productIdx[key] = &cp
	return nil
}

func (t *tenant) addUser(id, upn, display string) *user {
	u := &user{ID: id, UPN: upn, DisplayName: display}
	t.users[id] = u
	t.userOrder = append(t.userOrder, id)
	t.upnIdx[strings.ToLower(upn)] = id
	return u
}

// findUser looks a user up by object ID or UPN.
func (t *tenant) findUser(idOrUPN string) *user {
	if u, ok := t.users[idOrUPN]; ok {
		return u
	}
	if id, ok := t.upnIdx[strings.ToLower(idOrUPN)]; ok {
		return t.users[id]
	}
	return nil
}

func (t *tenant) addSubscription(sub *Subscription) {
	t.subs[sub.ID] = sub
	t.subOrder = append(t.subOrder, sub.ID)
}

// assign gives user id a seat of sub.
func (t *tenant) assign(sub *Subscription, id string) {
	sub.AssignedUsers = append(sub.AssignedUsers, id)
	if u := t.users[id]; u != nil {
		u.Seats = append(u.Seats, sub.ID)
	}
}

// unassignAll removes every seat of sub from its users.
func (t *tenant) unassignAll(sub *Subscription) []string {
	users := sub.AssignedUsers
	for _, id := range users {
		if u := t.users[id]; u != nil {
			u.Seats = slices.DeleteFunc(u.Seats, func(s string) bool { return s == sub.ID })
		}
	}
	sub.AssignedUsers = []string{}
	return users
}

// lookup returns the tenant with that ID.
func (s *Server) lookup(id string) (*tenant, error) {
	s.mu.RLock()
	t, ok := s.tenants[lower(id)]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrTenantNotFound, id)
	}
	return t, nil
}

// withTenant runs fn with the tenant locked.
func (s *Server) withTenant(id string, fn func(t *tenant) error) error {
	t, err := s.lookup(id)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tick(s.now(), s.opts.Lifecycle)
	return fn(t)
}

// Tenants lists every tenant in creation order.
func (s *Server) Tenants() []TenantInfo {
	s.mu.RLock()
	ids := slices.Clone(s.order)
	s.mu.RUnlock()
	out := make([]TenantInfo, 0, len(ids))
	for _, id := range ids {
		_ = s.withTenant(id, func(t *tenant) error { out = append(out, *t.info()); return nil })
	}
	return out
}

// Tenant describes one tenant.
func (s *Server) Tenant(tenantID string) (*TenantInfo, error) {
	var info *TenantInfo
	err := s.withTenant(tenantID, func(t *tenant) error { info = t.info(); return nil })
	return info, err
}
