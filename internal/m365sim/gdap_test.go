package m365sim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addCustomers adds n customer tenants to the fixture's tenant (the partner)
// and returns their IDs in order.
func (f *fixture) addCustomers(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		info, err := f.sim.AddTenant(TenantConfig{Name: fmt.Sprintf("Customer %d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sim.AddCustomerRelationship(f.tenant, CustomerRequest{TenantID: info.ID}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.ID)
	}
	return ids
}

func TestDelegatedAdminCustomersPaging(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.PageSize = 3 })
	ids := f.addCustomers(t, 5)
	tok := f.graphToken(t)
	first := f.do(t, "GET", f.graph(pathDelegatedAdminCustomers+"?$top=2"), tok, nil, nil).json(t)
	if first["@odata.context"] != delegatedAdminCustomersContext {
		t.Errorf("@odata.context: %v", first["@odata.context"])
	}
	item := first["value"].([]any)[0].(map[string]any)
	etag, _ := item["@odata.etag"].(string)
	if item["@odata.type"] != "#microsoft.graph.delegatedAdminCustomer" || item["id"] != ids[0] || item["tenantId"] != ids[0] ||
		item["displayName"] != "Customer 1" || !strings.HasPrefix(etag, `W/"`) || len(item) != 5 {
		t.Errorf("item: %v", item)
	}
	for _, tc := range []struct {
		query string
		pages int
	}{{"?$top=2", 3}, {"", 2}, {"?$top=300", 1}} {
		items, pages := f.listAll(t, tok, pathDelegatedAdminCustomers+tc.query)
		var got []string
		for _, it := range items {
			got = append(got, it["tenantId"].(string))
		}
		if diff := cmp.Diff(ids, got); diff != "" || pages != tc.pages {
			t.Errorf("%q: %d pages (want %d), customers (-want +got):\n%s", tc.query, pages, tc.pages, diff)
		}
	}
	for _, top := range []string{"301", "0", "x"} {
		if r := f.do(t, "GET", f.graph(pathDelegatedAdminCustomers+"?$top="+top), tok, nil, nil); r.status != 400 || graphError(t, r) != "BadRequest" {
			t.Errorf("$top=%s: want 400, got %d %s", top, r.status, r.body)
		}
	}
	if n := f.sim.Requests(f.tenant).Counts["graph GET delegatedAdminCustomers"]; n != 1+3+2+1+3 {
		t.Errorf("request count: %d", n)
	}
}

func TestDelegatedAdminCustomersPermissions(t *testing.T) {
	f := newFixture(t, nil)
	f.addCustomers(t, 1)
	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"app with DelegatedAdminRelationship.Read.All", f.appGraphToken(t, PermDelegatedAdminRelationshipRead), 200},
		{"app with DelegatedAdminRelationship.ReadWrite.All", f.appGraphToken(t, PermDelegatedAdminRelationshipReadWrite), 200},
		{"app without the permission", f.appGraphToken(t, PermOrganizationRead, PermPolicyReadAll), 403},
		{"delegated Admin Agent", f.delegatedGraphToken(t, RoleAdminAgent), 200},
		{"delegated Global Administrator", f.delegatedGraphToken(t, RoleGlobalAdmin), 200},
		{"delegated Billing Administrator (not a partner admin)", f.delegatedGraphToken(t, RoleBillingAdmin), 403},
	}
	for _, tc := range cases {
		r := f.do(t, "GET", f.graph(pathDelegatedAdminCustomers), tc.token, nil, nil)
		if r.status != tc.want || (tc.want == 403 && graphError(t, r) != "Authorization_RequestDenied") {
			t.Errorf("%s: want %d, got %d %s", tc.name, tc.want, r.status, r.body)
		}
	}
	if c := claimsOf(t, f.delegatedGraphToken(t, RoleAdminAgent)); len(c.Wids) != 0 {
		t.Errorf("Admin Agent is not a directory role, but the token's wids are %v", c.Wids)
	}
}

func TestCustomerLeavesWithItsLastRelationship(t *testing.T) {
	f := newFixture(t, nil)
	ids := f.addCustomers(t, 2)
	second, err := f.sim.AddCustomerRelationship(f.tenant, CustomerRequest{TenantID: ids[0], RelationshipName: "Billing only"})
	if err != nil {
		t.Fatal(err)
	}
	listed := func() []string {
		items, _ := f.listAll(t, f.graphToken(t), pathDelegatedAdminCustomers)
		var out []string
		for _, it := range items {
			out = append(out, it["tenantId"].(string))
		}
		return out
	}
	before, _ := f.sim.DelegatedAdminCustomers(f.tenant)
	if before[0].ActiveRelationships != 2 || !cmp.Equal(listed(), ids) {
		t.Fatalf("two relationships, one entry: %+v", before)
	}
	ended, err := f.sim.EndRelationship(f.tenant, second.ID)
	if err != nil || ended.Status != RelationshipTerminated || ended.EndDateTime == nil {
		t.Fatalf("end: %+v %v", ended, err)
	}
	after, _ := f.sim.DelegatedAdminCustomers(f.tenant)
	if !cmp.Equal(listed(), ids) || after[0].ETag == before[0].ETag {
		t.Errorf("one relationship left: listed %v, etag %s → %s", listed(), before[0].ETag, after[0].ETag)
	}
	if _, err := f.sim.EndRelationship(f.tenant, second.ID); !errors.Is(err, ErrRelationshipNotFound) {
		t.Errorf("ending an ended relationship: %v", err)
	}
	if gone, err := f.sim.RemoveCustomer(f.tenant, ids[0]); err != nil || len(gone) != 1 {
		t.Fatalf("remove customer: %v %v", gone, err)
	}
	if got := listed(); !cmp.Equal(got, ids[1:]) {
		t.Errorf("after the last relationship ended: %v", got)
	}
	rels, _ := f.sim.AdminRelationships(f.tenant)
	if len(rels) != 3 {
		t.Errorf("ended relationships are kept in the history: %d", len(rels))
	}
}

func TestCustomerRequestsValidated(t *testing.T) {
	f := newFixture(t, nil)
	cases := map[string]CustomerRequest{
		"not a GUID":                    {TenantID: "contoso"},
		"the partner itself":            {TenantID: f.tenant},
		"unknown tenant without a name": {TenantID: "0b2ae5c4-0000-4000-8000-000000000001"},
	}
	for name, c := range cases {
		if _, err := f.sim.AddCustomerRelationship(f.tenant, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	outside, err := f.sim.AddCustomerRelationship(f.tenant, CustomerRequest{TenantID: "0B2AE5C4-0000-4000-8000-000000000001", DisplayName: "Outside Ltd"})
	if err != nil || outside.CustomerTenantID != "0b2ae5c4-0000-4000-8000-000000000001" || outside.CustomerDisplayName != "Outside Ltd" {
		t.Errorf("a customer outside the simulator with a name: %+v %v", outside, err)
	}
}

func TestPartnerAdminAPIAndTenantConfig(t *testing.T) {
	f := newFixture(t, nil)
	base := f.sim.AdminURL() + "/_sim/tenants"
	cust := f.do(t, "POST", base, "", map[string]any{"id": "c0000000-0000-4000-8000-000000000001", "name": "Fabrikam"}, nil)
	partner := f.do(t, "POST", base, "", map[string]any{"name": "Partner", "customers": []map[string]any{
		{"tenantId": "c0000000-0000-4000-8000-000000000001"}, {"tenantId": "c0000000-0000-4000-8000-000000000002", "displayName": "Northwind"}}}, nil)
	if cust.status != 201 || partner.status != 201 {
		t.Fatalf("create: %d %s / %d %s", cust.status, cust.body, partner.status, partner.body)
	}
	f.tenant = partner.json(t)["id"].(string)
	var customers []DelegatedAdminCustomer
	if r := f.do(t, "GET", f.admin("/customers"), "", nil, nil); jsonUnmarshal(r.body, &customers) != nil || len(customers) != 2 || customers[0].DisplayName != "Fabrikam" {
		t.Fatalf("customers: %s", r.body)
	}
	added := f.do(t, "POST", f.admin("/customers"), "", map[string]string{"tenantId": "c0000000-0000-4000-8000-000000000003", "displayName": "Tailspin"}, nil)
	var rel AdminRelationship
	if added.status != 201 || jsonUnmarshal(added.body, &rel) != nil || rel.Status != RelationshipActive {
		t.Fatalf("add: %d %s", added.status, added.body)
	}
	steps := []struct {
		method, path string
		status       int
	}{
		{"POST", "/relationships/" + rel.ID + "/end", 200},
		{"POST", "/relationships/" + rel.ID + "/end", 404},
		{"DELETE", "/customers/c0000000-0000-4000-8000-000000000002", 200},
		{"DELETE", "/customers/c0000000-0000-4000-8000-000000000002", 404},
		{"GET", "/relationships", 200},
	}
	for _, s := range steps {
		if r := f.do(t, s.method, f.admin(s.path), "", nil, nil); r.status != s.status {
			t.Errorf("%s %s: want %d, got %d %s", s.method, s.path, s.status, r.status, r.body)
		}
	}
	if left, _ := f.sim.DelegatedAdminCustomers(f.tenant); len(left) != 1 || left[0].TenantID != "c0000000-0000-4000-8000-000000000001" {
		t.Errorf("left: %+v", left)
	}
	bad := f.do(t, "POST", base, "", map[string]any{"name": "Broken", "customers": []map[string]any{{"tenantId": "c0000000-0000-4000-8000-0000000000ff"}}}, nil)
	if bad.status != http.StatusNotFound || len(f.sim.Tenants()) != 3 {
		t.Errorf("a tenant with an unresolvable customer: %d %s, %d tenants", bad.status, bad.body, len(f.sim.Tenants()))
	}
}

func TestProvisionPartnerWithLaterCustomers(t *testing.T) {
	f := newFixture(t, nil)
	off := false
	tenants, err := f.sim.Provision(FleetFile{Tenants: []FleetTenant{
		{Name: "Partner", Customers: []CustomerRequest{{TenantID: "d0000000-0000-4000-8000-000000000001"}}},
		{ID: "d0000000-0000-4000-8000-000000000001", Name: "Later Customer", Settings: &TenantSettingsUpdate{IsOfficeStoreEnabled: &off}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	customers, _ := f.sim.DelegatedAdminCustomers(tenants[0].ID)
	if len(customers) != 1 || customers[0].DisplayName != "Later Customer" {
		t.Errorf("customers: %+v", customers)
	}
	if s, _ := f.sim.Settings(tenants[1].ID); s.IsOfficeStoreEnabled || !s.IsAppAndServicesTrialEnabled {
		t.Errorf("settings from the tenants file: %+v", s)
	}
}

func TestDelegatedAdminCustomersFault(t *testing.T) {
	f := newFixture(t, nil)
	f.addCustomers(t, 1)
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointGraph, PathPrefix: "/v1.0/tenantRelationships", Status: 429, RetryAfter: "3", Count: 1}); err != nil {
		t.Fatal(err)
	}
	tok := f.graphToken(t)
	if r := f.do(t, "GET", f.graph(pathDelegatedAdminCustomers), tok, nil, nil); r.status != 429 || r.header.Get("Retry-After") != "3" {
		t.Errorf("fault: %d", r.status)
	}
	if r := f.do(t, "GET", f.graph(pathDelegatedAdminCustomers), tok, nil, nil); r.status != 200 {
		t.Errorf("after the fault: %d", r.status)
	}
	if log := f.sim.Requests(f.tenant); log.Counts["graph GET delegatedAdminCustomers"] != 2 || log.EarlyRequests != 1 {
		t.Errorf("counts %v, early %d", log.Counts, log.EarlyRequests)
	}
}
