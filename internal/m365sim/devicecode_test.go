package m365sim

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// startDevice asks for a device code; it fails the test unless the answer is 200.
func (f *fixture) startDevice(t *testing.T, clientID, scope string) map[string]any {
	t.Helper()
	r := f.devicecode(t, clientID, scope)
	if r.status != http.StatusOK {
		t.Fatalf("devicecode: %d %s", r.status, r.body)
	}
	return r.json(t)
}

func (f *fixture) devicecode(t *testing.T, clientID, scope string) response {
	t.Helper()
	resp, err := f.client.PostForm(f.sim.Endpoints().AuthorityHost+"/"+f.tenant+"/oauth2/v2.0/devicecode", url.Values{"client_id": {clientID}, "scope": {scope}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// pollDevice polls the token endpoint once.
func (f *fixture) pollDevice(t *testing.T, clientID, deviceCode string) response {
	t.Helper()
	return f.tokenRequest(t, f.tenant, url.Values{"grant_type": {grantDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode}})
}

// wantEntraError checks an Entra error answer: 400, the error and the AADSTS code.
func wantEntraError(t *testing.T, what string, r response, wantErr string, wantCode int) {
	t.Helper()
	m := r.json(t)
	codes, _ := m["error_codes"].([]any)
	desc, _ := m["error_description"].(string)
	if r.status != http.StatusBadRequest || m["error"] != wantErr || len(codes) != 1 || int(codes[0].(float64)) != wantCode ||
		!strings.Contains(desc, "Trace ID:") || m["correlation_id"] == "" {
		t.Errorf("%s: want 400 %s AADSTS%d, got %d %s", what, wantErr, wantCode, r.status, r.body)
	}
}

const licScopeOffline = ResourceLicensing + "/.default offline_access openid profile"

func TestDeviceCodeFlow(t *testing.T) {
	f := newFixture(t, nil)
	dc := f.startDevice(t, CommerceModuleClientID, licScopeOffline)
	userCode, deviceCode := dc["user_code"].(string), dc["device_code"].(string)
	if dc["verification_uri"] != DeviceVerificationURI || dc["expires_in"] != 900.0 || dc["interval"] != 5.0 ||
		len(userCode) != userCodeLength || deviceCode == "" || !strings.Contains(dc["message"].(string), userCode) {
		t.Fatalf("devicecode answer: %v", dc)
	}
	wantEntraError(t, "first poll", f.pollDevice(t, CommerceModuleClientID, deviceCode), "authorization_pending", 70016)
	wantEntraError(t, "poll again at once", f.pollDevice(t, CommerceModuleClientID, deviceCode), "slow_down", 70016)
	f.clock.Advance(6 * time.Second) // the interval grew to 10 s
	wantEntraError(t, "poll within the grown interval", f.pollDevice(t, CommerceModuleClientID, deviceCode), "slow_down", 70016)
	f.clock.Advance(16 * time.Second)
	wantEntraError(t, "poll after the interval", f.pollDevice(t, CommerceModuleClientID, deviceCode), "authorization_pending", 70016)

	r := f.do(t, "POST", f.admin("/devicecodes/"+strings.ToLower(userCode)+"/approve"), "", map[string]any{"roles": []string{RoleBillingAdmin}}, nil)
	var signedIn User
	if r.status != 200 || jsonUnmarshal(r.body, &signedIn) != nil || signedIn.Roles[0] != RoleBillingAdmin {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	f.clock.Advance(time.Second) // too soon, but an approved code answers at once
	tok := f.pollDevice(t, CommerceModuleClientID, deviceCode)
	if tok.status != 200 {
		t.Fatalf("poll after approval: %d %s", tok.status, tok.body)
	}
	m := tok.json(t)
	c := claimsOf(t, m["access_token"].(string))
	rt, _ := m["refresh_token"].(string)
	if !c.delegated() || c.OID != signedIn.ID || c.AppID != CommerceModuleClientID || !c.hasDirectoryRole(RoleBillingAdmin) ||
		!c.forAudience(ResourceLicensing) || rt == "" || m["id_token"] == nil || !strings.Contains(m["scope"].(string), "offline_access") {
		t.Errorf("tokens: %v, claims %+v", m, c)
	}
	wantEntraError(t, "redeeming the code twice", f.pollDevice(t, CommerceModuleClientID, deviceCode), "invalid_grant", 70000)

	// The refresh token is what the controller's delegated auth redeems.
	lic := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"refresh_token"}, "client_id": {CommerceModuleClientID},
		"refresh_token": {rt}, "scope": {ResourceLicensing + "/.default offline_access"}})
	if lic.status != 200 {
		t.Fatalf("refresh token from the device flow: %d %s", lic.status, lic.body)
	}
	products := f.do(t, "GET", f.licensing("/v1.0/policies/AllowSelfServicePurchase/products"), lic.json(t)["access_token"].(string), nil, nil)
	if products.status != 200 {
		t.Errorf("licensing API with the delegated token: %d %s", products.status, products.body)
	}
	if n := f.sim.Requests(f.tenant).Counts["authority POST devicecode"]; n != 1 {
		t.Errorf("devicecode requests counted: %d", n)
	}
}

// SlowDownDeviceCode: the next poll, on time, answers slow_down once and
// the interval grows by 5 s; a poll that waits that long is pending again.
func TestDeviceCodeSlowDownOnDemand(t *testing.T) {
	f := newFixture(t, nil)
	dc := f.startDevice(t, CommerceModuleClientID, licScopeOffline)
	userCode, deviceCode := dc["user_code"].(string), dc["device_code"].(string)
	wantEntraError(t, "first poll", f.pollDevice(t, CommerceModuleClientID, deviceCode), "authorization_pending", 70016)
	r := f.do(t, "POST", f.admin("/devicecodes/"+userCode+"/slowdown"), "", nil, nil)
	var view DeviceCode
	if r.status != 200 || jsonUnmarshal(r.body, &view) != nil || view.IntervalSeconds != 5 {
		t.Fatalf("slowdown: %d %s", r.status, r.body)
	}
	f.clock.Advance(5 * time.Second)
	wantEntraError(t, "a poll on time after slowdown", f.pollDevice(t, CommerceModuleClientID, deviceCode), "slow_down", 70016)
	f.clock.Advance(5 * time.Second)
	wantEntraError(t, "a poll at the old interval", f.pollDevice(t, CommerceModuleClientID, deviceCode), "slow_down", 70016)
	f.clock.Advance(15 * time.Second)
	wantEntraError(t, "a poll at the grown interval", f.pollDevice(t, CommerceModuleClientID, deviceCode), "authorization_pending", 70016)
	if codes, _ := f.sim.DeviceCodes(f.tenant); len(codes) != 1 || codes[0].IntervalSeconds != 15 {
		t.Errorf("device codes: %+v", codes)
	}
}

func TestDeviceCodeDeclinedExpiredAndUnknown(t *testing.T) {
	f := newFixture(t, nil)
	declined := f.startDevice(t, CommerceModuleClientID, licScopeOffline)
	if _, err := f.sim.DeclineDeviceCode(f.tenant, declined["user_code"].(string)); err != nil {
		t.Fatal(err)
	}
	wantEntraError(t, "declined", f.pollDevice(t, CommerceModuleClientID, declined["device_code"].(string)), "authorization_declined", 70000)
	if _, err := f.sim.ApproveDeviceCode(f.tenant, declined["user_code"].(string), DeviceApproval{}); !errors.Is(err, ErrDeviceCodeNotPending) {
		t.Errorf("approving a declined code: %v", err)
	}

	expiring := f.startDevice(t, CommerceModuleClientID, licScopeOffline)
	f.clock.Advance(DefaultDeviceCodeLifetime)
	wantEntraError(t, "expired", f.pollDevice(t, CommerceModuleClientID, expiring["device_code"].(string)), "expired_token", 70019)
	if r := f.do(t, "POST", f.admin("/devicecodes/"+expiring["user_code"].(string)+"/approve"), "", nil, nil); r.status != http.StatusConflict {
		t.Errorf("approving an expired code: %d %s", r.status, r.body)
	}
	codes, _ := f.sim.DeviceCodes(f.tenant)
	if len(codes) != 2 || codes[0].Status != DeviceCodeDeclined || codes[1].Status != DeviceCodeExpired {
		t.Errorf("device codes: %+v", codes)
	}

	live := f.startDevice(t, CommerceModuleClientID, licScopeOffline)
	wantEntraError(t, "unknown device code", f.pollDevice(t, CommerceModuleClientID, "DAQABIQEAAADnotacode"), "bad_verification_code", 70018)
	wantEntraError(t, "another client's device code", f.pollDevice(t, testClient, live["device_code"].(string)), "bad_verification_code", 70018)
	if r := f.do(t, "POST", f.admin("/devicecodes/NOPE/approve"), "", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("approving an unknown user code: %d", r.status)
	}
}

func TestDeviceCodePublicClients(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "cli-app", PublicClient: true}); err != nil {
		t.Fatal(err)
	}
	if r := f.devicecode(t, "cli-app", ResourceGraph+"/.default"); r.status != 200 {
		t.Errorf("a registered public client: %d %s", r.status, r.body)
	}
	confidential := f.devicecode(t, testClient, ResourceGraph+"/.default")
	if m := confidential.json(t); confidential.status != http.StatusUnauthorized || m["error"] != "invalid_client" || m["error_codes"].([]any)[0] != 7000218.0 {
		t.Errorf("an app that does not allow public client flows: %d %s", confidential.status, confidential.body)
	}
	unknown := f.devicecode(t, "9f7f4b4e-0000-4000-8000-000000000000", ResourceGraph+"/.default")
	if m := unknown.json(t); unknown.status != http.StatusBadRequest || m["error"] != "unauthorized_client" || m["error_codes"].([]any)[0] != 700016.0 {
		t.Errorf("an unknown client: %d %s", unknown.status, unknown.body)
	}
	if r := f.devicecode(t, CommerceModuleClientID, "User.Read"); r.status != http.StatusBadRequest {
		t.Errorf("a scope without a resource: %d %s", r.status, r.body)
	}
}

func TestDeviceCodeWithoutOfflineAccessAndAsExistingUser(t *testing.T) {
	f := newFixture(t, nil)
	dc := f.startDevice(t, CommerceModuleClientID, ResourceGraph+"/.default")
	if _, err := f.sim.ApproveDeviceCode(f.tenant, dc["user_code"].(string), DeviceApproval{UserPrincipalName: "admin@contoso.onmicrosoft.com"}); err != nil {
		t.Fatal(err)
	}
	// MSAL sends the short grant type and asks for client_info.
	r := f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"device_code"}, "client_id": {CommerceModuleClientID},
		"device_code": {dc["device_code"].(string)}, "client_info": {"1"}})
	m := r.json(t)
	if r.status != 200 || m["refresh_token"] != nil || m["id_token"] != nil || m["client_info"] == nil {
		t.Fatalf("tokens without offline_access and openid: %d %s", r.status, r.body)
	}
	c := claimsOf(t, m["access_token"].(string))
	if c.UPN != "admin@contoso.onmicrosoft.com" || !c.hasDirectoryRole(RoleGlobalAdmin) {
		t.Errorf("signed in as the existing admin: %+v", c)
	}
}

// TestDeviceCodeWithAzidentity proves the wire format against MSAL: the
// prompt approves the code, and the credential gets its token.
func TestDeviceCodeWithAzidentity(t *testing.T) {
	f := newFixture(t, nil)
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.sim.Endpoints().AuthorityHost + "/"}, Transport: f.client},
		TenantID:      f.tenant, ClientID: CommerceModuleClientID, DisableInstanceDiscovery: true,
		UserPrompt: func(_ context.Context, m azidentity.DeviceCodeMessage) error {
			_, err := f.sim.ApproveDeviceCode(f.tenant, m.UserCode, DeviceApproval{Roles: []string{RoleGlobalAdmin}})
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{ResourceGraph + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(t, tok.Token); !c.delegated() || !c.hasDirectoryRole(RoleGlobalAdmin) {
		t.Errorf("claims: %+v", c)
	}
}
