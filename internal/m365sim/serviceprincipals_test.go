package m365sim

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A tenant without the licensing service principal refuses every token for
// the licensing API with Entra's AADSTS500011, whatever the grant, and still
// issues Graph tokens; creating the principal through the admin API fixes it.
func TestMissingLicensingServicePrincipal(t *testing.T) {
	f := newFixture(t, nil)
	info, err := f.sim.AddTenant(TenantConfig{Name: "No Licensing", WithoutServicePrincipals: []string{strings.ToUpper(ResourceLicensing)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sim.RegisterApp(info.ID, App{ClientID: testClient, Secret: testSecret, Permissions: AllPermissions}); err != nil {
		t.Fatal(err)
	}
	rt, err := f.sim.RegisterDelegatedUser(info.ID, CommerceModuleClientID, []string{RoleBillingAdmin})
	if err != nil {
		t.Fatal(err)
	}
	licScope := ResourceLicensing + "/.default"
	clientCreds := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "scope": {licScope}}
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {CommerceModuleClientID}, "refresh_token": {rt}, "scope": {licScope + " offline_access"}}

	for name, form := range map[string]url.Values{"client credentials": clientCreds, "refresh token": refresh} {
		r := f.tokenRequest(t, info.ID, form)
		wantEntraError(t, name, r, "invalid_resource", 500011)
		if !strings.Contains(string(r.body), "The resource principal named "+ResourceLicensing+" was not found in the tenant named No Licensing") {
			t.Errorf("%s: the description must name the resource and the tenant as Entra does: %s", name, r.body)
		}
	}
	f.tenant = info.ID
	wantEntraError(t, "device code", f.devicecode(t, CommerceModuleClientID, licScope+" offline_access"), "invalid_resource", 500011)

	graph := url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {testSecret}, "scope": {ResourceGraph + "/.default"}}
	if r := f.tokenRequest(t, info.ID, graph); r.status != http.StatusOK {
		t.Fatalf("Graph keeps its principal: %d %s", r.status, r.body)
	}

	if r := f.do(t, http.MethodPut, f.admin("/servicePrincipals/"+ResourceLicensing), "", nil, nil); r.status != http.StatusOK {
		t.Fatalf("create the principal: %d %s", r.status, r.body)
	}
	if r := f.tokenRequest(t, info.ID, clientCreds); r.status != http.StatusOK {
		t.Fatalf("after the admin created the principal: %d %s", r.status, r.body)
	}
	sps, err := f.sim.ServicePrincipals(info.ID)
	if err != nil || len(sps) != 2 || !sps[0].Present || !sps[1].Present {
		t.Errorf("ServicePrincipals = %v, %v; want both present", sps, err)
	}
	if _, err := f.sim.SetServicePrincipal(info.ID, "not-a-resource", false); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown resource must be refused, got %v", err)
	}
}
