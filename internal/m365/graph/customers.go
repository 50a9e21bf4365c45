package graph

import (
	"context"
	"strings"

	"github.com/google/uuid"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/tenantrelationships"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
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
// following @odata.nextLink on the Graph origin only): one entry per
// customer with an active admin relationship. The handle's tenant is the
// partner. Entries without a tenant ID that is a GUID (null items, missing
// fields) are left out and counted as Invalid, a customer listed twice is
// returned once (Duplicates); the caller decides what an empty, shrunken or
// damaged answer means. Needs DelegatedAdminRelationship.Read.All.
func (t Tenant) ListDelegatedAdminCustomers(ctx context.Context) ([]Customer, m365.ListInfo, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListDelegatedAdminCustomers, tenantID, err, nil)
	}
	rb := tenantrelationships.NewDelegatedAdminCustomersRequestBuilderInternal(s.pathParams(), s.adapter)
	top := customersPageSize
	cfg := &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetRequestConfiguration{
		QueryParameters: &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetQueryParameters{Top: &top, Select: customerFields},
	}
	items, info, err := collect(ctx, c.followable,
		func(ctx context.Context) (models.DelegatedAdminCustomerCollectionResponseable, error) {
			return rb.Get(ctx, cfg)
		},
		func(ctx context.Context, next string) (models.DelegatedAdminCustomerCollectionResponseable, error) {
			return rb.WithUrl(next).Get(ctx, nil)
		})
	if err != nil {
		return nil, m365.ListInfo{}, c.classify(ctx, OpListDelegatedAdminCustomers, tenantID, err, s.rec)
	}
	out := make([]Customer, 0, len(items))
	seen := m365.Keys{}
	for _, it := range items {
		c := toCustomer(it)
		if !seen.Keep(&info, c.TenantID) {
			continue
		}
		if (&c).bound() {
			info.Truncated++
		}
		out = append(out, c)
	}
	return out, info, nil
}

// toCustomer copies a customer; a tenant ID that is not a GUID is left
// empty (the item is invalid), a GUID is written in lower case.
func toCustomer(m models.DelegatedAdminCustomerable) Customer {
	c := Customer{DisplayName: deref(m.GetDisplayName())}
	if id, err := uuid.Parse(strings.TrimSpace(deref(m.GetTenantId()))); err == nil {
		c.TenantID = id.String()
	}
	return c
}

// bound keeps the display name to one line of at most MaxNameLength runes.
func (c *Customer) bound() bool {
	var b m365.Bounder
	b.Text(&c.DisplayName, m365.MaxNameLength)
	return b.Changed
}
