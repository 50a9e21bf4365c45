package m365sim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Partner customers (GDAP, docs/microsoft-api.md, "List GDAP customers"): a tenant can be a partner with
// granular delegated admin relationships to customer tenants; Graph lists
// every customer with at least one active relationship.

// Graph permissions of the GDAP API (application or delegated).
const (
	PermDelegatedAdminRelationshipRead      = "DelegatedAdminRelationship.Read.All"
	PermDelegatedAdminRelationshipReadWrite = "DelegatedAdminRelationship.ReadWrite.All"
)

// GDAP constants.
const (
	pathDelegatedAdminCustomers = "/v1.0/tenantRelationships/delegatedAdminCustomers"
	// delegatedAdminCustomersContext is the @odata.context Microsoft's example shows.
	delegatedAdminCustomersContext = "https://graph.microsoft.com/v1.0/tenantRelationships/$metadata#delegatedAdminCustomers"
	// MaxDelegatedAdminCustomersTop is the largest $top the list accepts
	// (Microsoft documents only this maximum; without $top a page holds
	// min(Options.PageSize, 300) customers).
	MaxDelegatedAdminCustomersTop = 300
	// Relationship statuses.
	RelationshipActive     = "active"
	RelationshipTerminated = "terminated"
)

// graphResourceRoutes names the request-log routes of the singleton and
// partner resources (see RequestLog).
var graphResourceRoutes = map[string]string{
	pathDelegatedAdminCustomers: "delegatedAdminCustomers",
	pathAuthorizationPolicy:     SettingsAuthorizationPolicy,
	pathAppsAndServices:         SettingsAppsAndServices,
}

// ErrRelationshipNotFound: no admin relationship with that ID (admin API 404).
var ErrRelationshipNotFound = errors.New("admin relationship not found")

// AdminRelationship is a GDAP relationship between a partner and a customer.
type AdminRelationship struct {
	ID                  string     `json:"id"`
	DisplayName         string     `json:"displayName"`
	PartnerTenantID     string     `json:"partnerTenantId"`
	CustomerTenantID    string     `json:"customerTenantId"`
	CustomerDisplayName string     `json:"customerDisplayName"`
	Status              string     `json:"status"`
	CreatedDateTime     time.Time  `json:"createdDateTime"`
	EndDateTime         *time.Time `json:"endDateTime,omitempty"`
}

// CustomerRequest adds a relationship with a customer. DisplayName defaults
// to the customer tenant's name (required when the customer is not a
// simulated tenant); RelationshipName defaults to "Default relationship".
type CustomerRequest struct {
	TenantID         string `json:"tenantId"`
	DisplayName      string `json:"displayName,omitempty"`
	RelationshipName string `json:"relationshipName,omitempty"`
}

// DelegatedAdminCustomer is a customer as Graph lists it, with the number of
// its active relationships.
type DelegatedAdminCustomer struct {
	ID                  string `json:"id"`
	TenantID            string `json:"tenantId"`
	DisplayName         string `json:"displayName"`
	ActiveRelationships int    `json:"activeRelationships"`
	// ETag is the item's @odata.etag.
	ETag string `json:"etag"`
}

// partnerState is a tenant's relationships as a partner (zero value usable).
type partnerState struct {
	rels []*AdminRelationship // creation order
}

// customers derives the customer list from the active relationships, in
// the order of each customer's first active relationship.
func (p *partnerState) customers() []DelegatedAdminCustomer {
	var out []DelegatedAdminCustomer
	idx := map[string]int{}
	rels := map[string][]string{}
	for _, r := range p.rels {
		if r.Status != RelationshipActive {
			continue
		}
		rels[r.CustomerTenantID] = append(rels[r.CustomerTenantID], r.ID)
		if i, ok := idx[r.CustomerTenantID]; ok {
			out[i].ActiveRelationships++
			continue
		}
		idx[r.CustomerTenantID] = len(out)
		out = append(out, DelegatedAdminCustomer{ID: r.CustomerTenantID, TenantID: r.CustomerTenantID, DisplayName: r.CustomerDisplayName, ActiveRelationships: 1})
	}
	for i := range out {
		out[i].ETag = etag(rels[out[i].ID])
	}
	return out
}

// etag is a weak entity tag in the form Microsoft's example shows; it
// changes with the customer's set of active relationships.
func etag(relationshipIDs []string) string {
	sum := sha256.Sum256([]byte(strings.Join(relationshipIDs, ",")))
	h := hex.EncodeToString(sum[:])
	version := h[:8] + "-0000-0200-0000-" + h[8:20]
	return `W/"` + base64.StdEncoding.EncodeToString([]byte(`'"`+version+`"'`)) + `"`
}

// newRelationship resolves a customer request into a relationship (the
// customer's name is read before the partner is locked).
func (s *Server) newRelationship(partnerID string, c CustomerRequest) (*AdminRelationship, error) {
	cid, err := uuid.Parse(strings.TrimSpace(c.TenantID))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: customer tenantId %q is not a GUID", ErrInvalid, clip(c.TenantID))
	case cid.String() == lower(partnerID):
		return nil, fmt.Errorf("%w: a partner cannot be its own customer", ErrInvalid)
	}
	name := c.DisplayName
	if name == "" {
		info, err := s.Tenant(cid.String())
		if err != nil {
			return nil, fmt.Errorf("customer %s: %w (give a displayName for a customer outside the simulator)", cid, err)
		}
		name = info.Name
	}
	rname := c.RelationshipName
	if rname == "" {
		rname = "Default relationship"
	}
	return &AdminRelationship{ID: s.newGUID() + "-" + cid.String(), DisplayName: rname, PartnerTenantID: lower(partnerID),
		CustomerTenantID: cid.String(), CustomerDisplayName: name, Status: RelationshipActive,
		CreatedDateTime: s.now().UTC().Truncate(time.Second)}, nil
}

// AddCustomerRelationship adds an active admin relationship between a
// partner and a customer; the customer appears in the partner's
// delegatedAdminCustomers. A second relationship with the same customer is
// allowed (the customer is listed once).
func (s *Server) AddCustomerRelationship(partnerTenantID string, c CustomerRequest) (AdminRelationship, error) {
	if _, err := s.lookup(partnerTenantID); err != nil {
		return AdminRelationship{}, err
	}
	rel, err := s.newRelationship(partnerTenantID, c)
	if err != nil {
		return AdminRelationship{}, err
	}
	err = s.withTenant(partnerTenantID, func(t *tenant) error {
		t.partner.rels = append(t.partner.rels, rel)
		return nil
	})
	return *rel, err
}

// EndRelationship terminates one admin relationship; the customer leaves
// delegatedAdminCustomers when its last active relationship ends.
func (s *Server) EndRelationship(partnerTenantID, relationshipID string) (AdminRelationship, error) {
	ended, err := s.endRelationships(partnerTenantID, func(r *AdminRelationship) bool { return r.ID == relationshipID })
	if err == nil && len(ended) == 0 {
		err = fmt.Errorf("%w: %s", ErrRelationshipNotFound, clip(relationshipID))
	}
	if err != nil {
		return AdminRelationship{}, err
	}
	return ended[0], nil
}

// RemoveCustomer terminates every active relationship with a customer and
// returns them (ErrRelationshipNotFound when there was none).
func (s *Server) RemoveCustomer(partnerTenantID, customerTenantID string) ([]AdminRelationship, error) {
	ended, err := s.endRelationships(partnerTenantID, func(r *AdminRelationship) bool { return r.CustomerTenantID == lower(customerTenantID) })
	if err == nil && len(ended) == 0 {
		err = fmt.Errorf("%w: no active relationship with %s", ErrRelationshipNotFound, clip(customerTenantID))
	}
	return ended, err
}

func (s *Server) endRelationships(partnerTenantID string, match func(*AdminRelationship) bool) ([]AdminRelationship, error) {
	now := s.now().UTC().Truncate(time.Second)
	ended := []AdminRelationship{}
	err := s.withTenant(partnerTenantID, func(t *tenant) error {
		for _, r := range t.partner.rels {
			if r.Status == RelationshipActive && match(r) {
				r.Status, r.EndDateTime = RelationshipTerminated, &now
				ended = append(ended, *r)
			}
		}
		return nil
	})
	return ended, err
}

// AdminRelationships lists a partner's relationships (terminated ones too).
func (s *Server) AdminRelationships(partnerTenantID string) ([]AdminRelationship, error) {
	out := []AdminRelationship{}
	err := s.withTenant(partnerTenantID, func(t *tenant) error {
		for _, r := range t.partner.rels {
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}

// DelegatedAdminCustomers lists what Graph's delegatedAdminCustomers lists.
func (s *Server) DelegatedAdminCustomers(partnerTenantID string) ([]DelegatedAdminCustomer, error) {
	out := []DelegatedAdminCustomer{}
	err := s.withTenant(partnerTenantID, func(t *tenant) error { out = append(out, t.partner.customers()...); return nil })
	return out, err
}

// graphPartnerRoutes registers the GDAP resources on the Graph mux.
func (s *Server) graphPartnerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathDelegatedAdminCustomers, s.graphAllowed(gdapReadAllowed, s.handleDelegatedAdminCustomers))
}

// gdapReadAllowed: an app token with DelegatedAdminRelationship.Read.All or
// .ReadWrite.All, or a delegated token (same scopes) of a partner admin: a
// Global Administrator or an Admin Agent of the partner tenant.
func gdapReadAllowed(c *accessClaims, t *tenant) bool {
	perms := []string{PermDelegatedAdminRelationshipRead, PermDelegatedAdminRelationshipReadWrite}
	if !c.delegated() {
		return c.hasRole(perms...)
	}
	if !c.hasScope(perms...) {
		return false
	}
	if c.hasDirectoryRole(RoleGlobalAdmin) {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.users[c.OID]
	return u != nil && slices.Contains(u.Roles, RoleAdminAgent)
}

func (s *Server) handleDelegatedAdminCustomers(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	customers := t.partner.customers()
	items := make([]map[string]any, 0, len(customers))
	for _, c := range customers {
		items = append(items, map[string]any{"@odata.type": "#microsoft.graph.delegatedAdminCustomer", "@odata.etag": c.ETag,
			"id": c.ID, "tenantId": c.TenantID, "displayName": c.DisplayName})
	}
	t.mu.Unlock()
	s.writePageOf(w, r, delegatedAdminCustomersContext, items, MaxDelegatedAdminCustomersTop)
}
