package graph

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/tenantrelationships"
)

// OpListDelegatedAdminCustomers names the customer listing in *m365.Error.
const OpListDelegatedAdminCustomers = "list delegated admin customers"

// customersPageSize is the $top of the customer listing: the largest page
// Microsoft allows, so a partner with 3,000 customers costs 10 requests.
const customersPageSize int32 = 300

// customerFields is the $select of the customer listing.
var customerFields = []string{"id", "tenantId", "displayName"}

// Customer is a customer of a Microsoft partner with at least one active
// granular delegated admin (GDAP) relationship.
type Customer struct {
	// TenantID is the customer's tenant ID, in lower case.
	TenantID    string
	DisplayName string
}

// ListDelegatedAdminCustomers returns the partner's customers
// (GET /tenantRelationships/delegatedAdminCustomers, paged at $top=300,
// following @odata.nextLink): one entry per customer with an active admin
// relationship. The handle's tenant is the partner. Entries without a
// tenant ID that is a GUID (null items, missing fields) are left out, and
// a customer listed twice is returned once; the caller decides what an
// empty or shrunken answer means. Needs DelegatedAdminRelationship.Read.All.
func (t Tenant) ListDelegatedAdminCustomers(ctx context.Context) ([]Customer, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, c.classify(ctx, OpListDelegatedAdminCustomers, tenantID, err, nil)
	}
	rb := tenantrelationships.NewDelegatedAdminCustomersRequestBuilderInternal(s.pathParams(), s.adapter)
	top := customersPageSize
	cfg := &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetRequestConfiguration{
		QueryParameters: &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetQueryParameters{Top: &top, Select: customerFields},
	}
	items, err := collect(ctx,
		func(ctx context.Context) (models.DelegatedAdminCustomerCollectionResponseable, error) {
			return rb.Get(ctx, cfg)
		},
		func(ctx context.Context, next string) (models.DelegatedAdminCustomerCollectionResponseable, error) {
			return rb.WithUrl(next).Get(ctx, nil)
		})
	if err != nil {
		return nil, c.classify(ctx, OpListDelegatedAdminCustomers, tenantID, err, s.rec)
	}
	return toCustomers(items), nil
}

// toCustomers keeps the entries whose tenant ID is a GUID, once each, in
// the order Graph listed them.
func toCustomers(items []models.DelegatedAdminCustomerable) []Customer {
	out := make([]Customer, 0, len(items))
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if it == nil {
			continue
		}
		id, err := uuid.Parse(strings.TrimSpace(deref(it.GetTenantId())))
		if err != nil || seen[id.String()] {
			continue
		}
		seen[id.String()] = true
		out = append(out, Customer{TenantID: id.String(), DisplayName: deref(it.GetDisplayName())})
	}
	return out
}
