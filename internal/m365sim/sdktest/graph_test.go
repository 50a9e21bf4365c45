package sdktest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	kiotaauth "github.com/microsoft/kiota-authentication-azure-go"
	msgraphsdk "github.com/microsoftgraph/msgraph-sdk-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/microsoftgraph/msgraph-sdk-go/tenantrelationships"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const appSecret = "sdk-secret"

// fixture is a started simulator with a partner tenant.
type fixture struct {
	sim     *m365sim.Server
	partner string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	p, err := sim.AddTenant(m365sim.TenantConfig{Name: "Partner"})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, partner: p.ID}
}

// client returns a Graph client for an app of the partner holding perms,
// wired as internal/m365/graph wires it.
func (f *fixture) client(t *testing.T, clientID string, perms ...string) (*msgraphsdk.GraphServiceClient, *msgraphsdk.GraphRequestAdapter) {
	t.Helper()
	if err := f.sim.RegisterApp(f.partner, m365sim.App{ClientID: clientID, Secret: appSecret, Permissions: perms}); err != nil {
		t.Fatal(err)
	}
	hc := f.sim.HTTPClient()
	cred, err := azidentity.NewClientSecretCredential(f.partner, clientID, appSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.sim.Endpoints().AuthorityHost + "/"}, Transport: hc},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := kiotaauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{m365sim.ResourceGraph + "/.default"}, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	adapter, err := msgraphsdk.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, hc)
	if err != nil {
		t.Fatal(err)
	}
	adapter.SetBaseUrl(f.sim.Endpoints().Graph + "/v1.0")
	return msgraphsdk.NewGraphServiceClient(adapter), adapter
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAuthorizationPolicyWithTheSDK(t *testing.T) {
	f := newFixture(t)
	client, _ := f.client(t, "policy-app", m365sim.PermPolicyReadWriteAuthorization)
	p, err := client.Policies().AuthorizationPolicy().Get(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *p.GetId() != "authorizationPolicy" || !*p.GetAllowedToSignUpEmailBasedSubscriptions() || !*p.GetAllowEmailVerifiedUsersToJoinOrganization() ||
		p.GetAllowInvitesFrom().String() != "everyone" || !*p.GetDefaultUserRolePermissions().GetAllowedToCreateApps() || p.GetGuestUserRoleId() == nil {
		t.Errorf("decoded policy: id %v signUp %v join %v", *p.GetId(), *p.GetAllowedToSignUpEmailBasedSubscriptions(), *p.GetAllowEmailVerifiedUsersToJoinOrganization())
	}
	off := false
	body := models.NewAuthorizationPolicy()
	body.SetAllowedToSignUpEmailBasedSubscriptions(&off)
	if _, err := client.Policies().AuthorizationPolicy().Patch(ctx(t), body, nil); err != nil {
		t.Fatalf("PATCH: %v", err)
	}
	writes, _ := f.sim.SettingsWrites(f.partner)
	if len(writes) != 1 || len(writes[0].Fields) != 1 || writes[0].Fields[0] != "allowedToSignUpEmailBasedSubscriptions" {
		t.Errorf("the SDK's PATCH body sets only the changed field: %+v", writes)
	}
	if s, _ := f.sim.Settings(f.partner); s.AllowedToSignUpEmailBasedSubscriptions || !s.AllowEmailVerifiedUsersToJoinOrganization {
		t.Errorf("settings after PATCH: %+v", s)
	}
}

func TestDelegatedAdminCustomersWithTheSDK(t *testing.T) {
	f := newFixture(t)
	var want []string
	for _, name := range []string{"Contoso", "Fabrikam", "Northwind"} {
		c, err := f.sim.AddTenant(m365sim.TenantConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.sim.AddCustomerRelationship(f.partner, m365sim.CustomerRequest{TenantID: c.ID}); err != nil {
			t.Fatal(err)
		}
		want = append(want, c.ID+" "+name)
	}
	client, _ := f.client(t, "gdap-app", m365sim.PermDelegatedAdminRelationshipRead)
	top := int32(2)
	page, err := client.TenantRelationships().DelegatedAdminCustomers().Get(ctx(t), &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetRequestConfiguration{
		QueryParameters: &tenantrelationships.DelegatedAdminCustomersRequestBuilderGetQueryParameters{Top: &top}})
	var got []string
	for err == nil {
		for _, c := range page.GetValue() {
			got = append(got, *c.GetTenantId()+" "+*c.GetDisplayName())
		}
		if page.GetOdataNextLink() == nil {
			break
		}
		page, err = client.TenantRelationships().DelegatedAdminCustomers().WithUrl(*page.GetOdataNextLink()).Get(ctx(t), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("customers: %v, want %v", got, want)
	}

	denied, _ := f.client(t, "no-gdap-app", m365sim.PermOrganizationRead)
	_, err = denied.TenantRelationships().DelegatedAdminCustomers().Get(ctx(t), nil)
	var od *odataerrors.ODataError
	if !errors.As(err, &od) || od.ResponseStatusCode != http.StatusForbidden || *od.GetErrorEscaped().GetCode() != "Authorization_RequestDenied" {
		t.Errorf("without the permission: %v", err)
	}
}

// TestBetaAppsAndServicesThroughTheAdapter sends the beta request the way
// the controller must (the v1.0 SDK has no appsAndServices): through the
// same request adapter, with the beta URL.
func TestBetaAppsAndServicesThroughTheAdapter(t *testing.T) {
	f := newFixture(t)
	_, adapter := f.client(t, "apps-app", m365sim.PermAppsAndServicesRead)
	req := abs.NewRequestInformation()
	req.Method = abs.GET
	req.SetUri(mustURL(t, f.sim.Endpoints().Graph+"/beta/admin/appsAndServices"))
	req.Headers.Add("Accept", "application/json")
	raw, err := adapter.SendPrimitive(ctx(t), req, "[]byte", nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := raw.([]byte); !strings.Contains(string(b), `"isAppAndServicesTrialEnabled":true`) {
		t.Errorf("beta answer: %s", b)
	}
}

func mustURL(t *testing.T, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}
