package m365sim

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAuthorizationPolicyGet(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "GET", f.graph(pathAuthorizationPolicy), f.graphToken(t), nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	m := r.json(t)
	want := map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#policies/authorizationPolicy/$entity",
		"id":             "authorizationPolicy", "displayName": "Authorization Policy",
		"allowedToSignUpEmailBasedSubscriptions": true, "allowEmailVerifiedUsersToJoinOrganization": true,
		"allowInvitesFrom": "everyone", "allowedToUseSSPR": true, "allowUserConsentForRiskyApps": false,
		"blockMsolPowerShell": nil, "guestUserRoleId": "10dae51f-b6af-4016-8d66-8c2a99b929b3",
	}
	got := map[string]any{}
	for k := range want {
		got[k] = m[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("authorization policy (-want +got):\n%s", diff)
	}
	if d, _ := m["defaultUserRolePermissions"].(map[string]any); d["allowedToCreateApps"] != true || len(d["permissionGrantPoliciesAssigned"].([]any)) != 1 {
		t.Errorf("defaultUserRolePermissions: %v", m["defaultUserRolePermissions"])
	}
	sel := f.do(t, "GET", f.graph(pathAuthorizationPolicy+"?$select=allowedToSignUpEmailBasedSubscriptions"), f.graphToken(t), nil, nil).json(t)
	if len(sel) != 2 || sel["allowedToSignUpEmailBasedSubscriptions"] != true {
		t.Errorf("$select: %v", sel)
	}
}

func TestAuthorizationPolicyPatchSetsOnlyTheGivenFields(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	body := `{"@odata.type":"#microsoft.graph.authorizationPolicy","allowedToSignUpEmailBasedSubscriptions":false,"defaultUserRolePermissions":{"allowedToCreateApps":false}}`
	if r := f.do(t, "PATCH", f.graph(pathAuthorizationPolicy), tok, body, map[string]string{"Content-Type": "application/json"}); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("PATCH: want 204 without body, got %d %s", r.status, r.body)
	}
	want := DefaultAuthorizationPolicy()
	want.AllowedToSignUpEmailBasedSubscriptions = false
	want.DefaultUserRolePermissions.AllowedToCreateApps = false
	got, _ := f.sim.AuthorizationPolicy(f.tenant)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("only the two fields change (-want +got):\n%s", diff)
	}
	writes, _ := f.sim.SettingsWrites(f.tenant)
	if len(writes) != 1 || writes[0].Resource != SettingsAuthorizationPolicy || writes[0].Caller != testClient ||
		!cmp.Equal(writes[0].Fields, []string{"allowedToSignUpEmailBasedSubscriptions", "defaultUserRolePermissions.allowedToCreateApps"}) {
		t.Errorf("settings writes: %+v", writes)
	}
	if s, _ := f.sim.Settings(f.tenant); s.AllowedToSignUpEmailBasedSubscriptions || !s.AllowEmailVerifiedUsersToJoinOrganization {
		t.Errorf("settings view: %+v", s)
	}
}

func TestSettingsPatchRejectsInvalidBodies(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	cases := map[string]struct {
		path, body, message string
	}{
		"unknown property":  {pathAuthorizationPolicy, `{"allowedToBuyEverything":false}`, "does not exist on type 'microsoft.graph.authorizationPolicy'"},
		"wrong type":        {pathAuthorizationPolicy, `{"allowedToSignUpEmailBasedSubscriptions":"no"}`, "expected type 'Edm.Boolean'"},
		"null not allowed":  {pathAuthorizationPolicy, `{"allowEmailVerifiedUsersToJoinOrganization":null}`, "does not allow null values"},
		"read-only id":      {pathAuthorizationPolicy, `{"id":"other"}`, "read-only"},
		"bad enum":          {pathAuthorizationPolicy, `{"allowInvitesFrom":"anyone"}`, "Requested value 'anyone'"},
		"nested unknown":    {pathAuthorizationPolicy, `{"defaultUserRolePermissions":{"allowedToFly":true}}`, "microsoft.graph.defaultUserRolePermissions"},
		"wrong odata type":  {pathAuthorizationPolicy, `{"@odata.type":"#microsoft.graph.user"}`, "could not be resolved"},
		"empty body":        {pathAuthorizationPolicy, ``, "Empty Payload"},
		"not an object":     {pathAuthorizationPolicy, `[true]`, "JSON object"},
		"settings required": {pathAppsAndServices, `{}`, "'settings' is required"},
		"settings unknown":  {pathAppsAndServices, `{"settings":{"isEverythingEnabled":true}}`, "microsoft.graph.appsAndServicesSettings"},
		"settings type":     {pathAppsAndServices, `{"settings":{"isOfficeStoreEnabled":1}}`, "Edm.Boolean"},
	}
	for name, tc := range cases {
		r := f.do(t, "PATCH", f.graph(tc.path), tok, tc.body, map[string]string{"Content-Type": "application/json"})
		msg, _ := r.json(t)["error"].(map[string]any)["message"].(string)
		if r.status != http.StatusBadRequest || graphError(t, r) != "BadRequest" || !strings.Contains(msg, tc.message) {
			t.Errorf("%s: want 400 BadRequest %q, got %d %s", name, tc.message, r.status, r.body)
		}
	}
	if got, _ := f.sim.AuthorizationPolicy(f.tenant); !cmp.Equal(got, DefaultAuthorizationPolicy()) {
		t.Errorf("a refused PATCH changed the policy: %+v", got)
	}
	if w, _ := f.sim.SettingsWrites(f.tenant); len(w) != 0 {
		t.Errorf("refused PATCHes recorded as writes: %+v", w)
	}
}

func TestAppsAndServicesGetAndPatch(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	get := func() map[string]any {
		r := f.do(t, "GET", f.graph(pathAppsAndServices), tok, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		return r.json(t)
	}
	m := get()
	if m["@odata.context"] != "https://graph.microsoft.com/beta/$metadata#admin/appsAndServices/$entity" || m["id"] == "" ||
		!cmp.Equal(m["settings"], map[string]any{"isAppAndServicesTrialEnabled": true, "isOfficeStoreEnabled": true}) {
		t.Errorf("GET shape: %v", m)
	}
	r := f.do(t, "PATCH", f.graph(pathAppsAndServices), tok, `{"settings":{"isOfficeStoreEnabled":false}}`, map[string]string{"Content-Type": "application/json"})
	if r.status != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if s := get()["settings"]; !cmp.Equal(s, map[string]any{"isAppAndServicesTrialEnabled": true, "isOfficeStoreEnabled": false}) {
		t.Errorf("only isOfficeStoreEnabled changes: %v", s)
	}
	w, _ := f.sim.SettingsWrites(f.tenant)
	if len(w) != 1 || w[0].Resource != SettingsAppsAndServices || !cmp.Equal(w[0].Fields, []string{"settings.isOfficeStoreEnabled"}) {
		t.Errorf("writes: %+v", w)
	}
	counts := f.sim.Requests(f.tenant).Counts
	if counts["graph GET appsAndServices"] != 2 || counts["graph PATCH appsAndServices"] != 1 {
		t.Errorf("counts: %v", counts)
	}
}

func TestSettingsPermissions(t *testing.T) {
	f := newFixture(t, nil)
	none := f.appGraphToken(t, PermOrganizationRead)
	policyRO := f.appGraphToken(t, PermPolicyReadAll)
	policyRW := f.appGraphToken(t, PermPolicyReadWriteAuthorization)
	appsRO := f.appGraphToken(t, PermAppsAndServicesRead)
	appsRW := f.appGraphToken(t, PermAppsAndServicesReadWrite)
	globalAdmin := f.delegatedGraphToken(t, RoleGlobalAdmin)
	reader := f.delegatedGraphToken(t, RoleGlobalReader)
	pra := f.delegatedGraphToken(t, RolePrivilegedRoleAdmin)
	billing := f.delegatedGraphToken(t, RoleBillingAdmin)
	policyPatch, appsPatch := `{"allowEmailVerifiedUsersToJoinOrganization":false}`, `{"settings":{"isAppAndServicesTrialEnabled":false}}`
	cases := []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"app without Policy permissions reads", "GET", pathAuthorizationPolicy, none, "", 403},
		{"Policy.Read.All reads", "GET", pathAuthorizationPolicy, policyRO, "", 200},
		{"Policy.Read.All cannot write", "PATCH", pathAuthorizationPolicy, policyRO, policyPatch, 403},
		{"Policy.ReadWrite.Authorization reads", "GET", pathAuthorizationPolicy, policyRW, "", 200},
		{"Policy.ReadWrite.Authorization writes", "PATCH", pathAuthorizationPolicy, policyRW, policyPatch, 204},
		{"Policy permissions do not open appsAndServices", "GET", pathAppsAndServices, policyRW, "", 403},
		{"AppsAndServices.Read.All reads", "GET", pathAppsAndServices, appsRO, "", 200},
		{"AppsAndServices.Read.All cannot write", "PATCH", pathAppsAndServices, appsRO, appsPatch, 403},
		{"AppsAndServices.ReadWrite.All writes", "PATCH", pathAppsAndServices, appsRW, appsPatch, 204},
		{"delegated Global Reader reads the policy", "GET", pathAuthorizationPolicy, reader, "", 200},
		{"delegated Global Reader cannot write the policy", "PATCH", pathAuthorizationPolicy, reader, policyPatch, 403},
		{"delegated Privileged Role Administrator writes the policy", "PATCH", pathAuthorizationPolicy, pra, policyPatch, 204},
		{"delegated Privileged Role Administrator cannot write appsAndServices", "PATCH", pathAppsAndServices, pra, appsPatch, 403},
		{"delegated Global Administrator writes appsAndServices", "PATCH", pathAppsAndServices, globalAdmin, appsPatch, 204},
		{"delegated Billing Administrator reads neither", "GET", pathAppsAndServices, billing, "", 403},
	}
	for _, tc := range cases {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := f.do(t, tc.method, f.graph(tc.path), tc.token, body, map[string]string{"Content-Type": "application/json"})
		if r.status != tc.want || (tc.want == 403 && graphError(t, r) != "Authorization_RequestDenied") {
			t.Errorf("%s: want %d, got %d %s", tc.name, tc.want, r.status, r.body)
		}
	}
}

func TestAppsAndServicesCloudModes(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	noPerm := f.appGraphToken(t, PermOrganizationRead)
	cases := []struct {
		mode   AppsAndServicesMode
		status int
		code   string
	}{
		{AppsAndServicesNotFound, 404, "NotFound"},
		{AppsAndServicesBadRequest, 400, "BadRequest"},
	}
	for _, tc := range cases {
		mode := tc.mode
		if _, err := f.sim.UpdateSettings(f.tenant, TenantSettingsUpdate{AppsAndServicesMode: &mode}); err != nil {
			t.Fatal(err)
		}
		for _, req := range []struct{ method, token, body string }{{"GET", tok, ""}, {"PATCH", tok, `{"settings":{}}`}, {"GET", noPerm, ""}} {
			var body any
			if req.body != "" {
				body = req.body
			}
			r := f.do(t, req.method, f.graph(pathAppsAndServices), req.token, body, nil)
			if r.status != tc.status || graphError(t, r) != tc.code {
				t.Errorf("%s %s: want %d %s, got %d %s", tc.mode, req.method, tc.status, tc.code, r.status, r.body)
			}
		}
	}
	// The authorization policy is v1.0 and stays available.
	if r := f.do(t, "GET", f.graph(pathAuthorizationPolicy), tok, nil, nil); r.status != 200 {
		t.Errorf("authorizationPolicy in a cloud without appsAndServices: %d", r.status)
	}
	wrapped := AppsAndServicesValueWrapped
	_, _ = f.sim.UpdateSettings(f.tenant, TenantSettingsUpdate{AppsAndServicesMode: &wrapped})
	v, _ := f.do(t, "GET", f.graph(pathAppsAndServices), tok, nil, nil).json(t)["value"].(map[string]any)
	if s, _ := v["settings"].(map[string]any); v["@odata.type"] != "#microsoft.graph.adminAppsAndServices" || s["isOfficeStoreEnabled"] != true {
		t.Errorf("value-wrapped answer: %v", v)
	}
	bad := AppsAndServicesMode("Sometimes")
	if _, err := f.sim.UpdateSettings(f.tenant, TenantSettingsUpdate{AppsAndServicesMode: &bad}); err == nil {
		t.Error("an unknown mode is accepted")
	}
}

func TestSettingsAdminAPIAndFaults(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(t, "PATCH", f.admin("/settings"), "", map[string]any{"isAppAndServicesTrialEnabled": false, "allowEmailVerifiedUsersToJoinOrganization": false}, nil)
	want := TenantSettings{AllowedToSignUpEmailBasedSubscriptions: true, IsOfficeStoreEnabled: true, AppsAndServicesMode: AppsAndServicesAvailable}
	var got TenantSettings
	if r.status != 200 || jsonUnmarshal(r.body, &got) != nil || got != want {
		t.Fatalf("admin PATCH settings: %d %s", r.status, r.body)
	}
	tok := f.graphToken(t)
	m := f.do(t, "GET", f.graph(pathAppsAndServices), tok, nil, nil).json(t)
	if m["settings"].(map[string]any)["isAppAndServicesTrialEnabled"] != false {
		t.Errorf("Graph does not show the flipped setting: %v", m)
	}
	if w, _ := f.sim.SettingsWrites(f.tenant); len(w) != 0 {
		t.Errorf("a change by hand is recorded as a Graph write: %v", w)
	}
	if bad := f.do(t, "PATCH", f.admin("/settings"), "", map[string]any{"appsAndServicesMode": "Never"}, nil); bad.status != 400 {
		t.Errorf("invalid mode: %d", bad.status)
	}
	if err := f.sim.InjectFault(f.tenant, Fault{Endpoint: EndpointGraph, Method: "PATCH", PathPrefix: pathAuthorizationPolicy, Status: 503, RetryAfter: "7", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if r := f.do(t, "PATCH", f.graph(pathAuthorizationPolicy), tok, `{"allowedToUseSSPR":false}`, nil); r.status != 503 || r.header.Get("Retry-After") != "7" {
		t.Errorf("fault: %d %v", r.status, r.header)
	}
	if p, _ := f.sim.AuthorizationPolicy(f.tenant); !p.AllowedToUseSSPR {
		t.Error("a faulted PATCH was applied")
	}
	if c := f.sim.Requests(f.tenant).Counts; c["graph PATCH authorizationPolicy"] != 1 || c["graph GET appsAndServices"] != 1 {
		t.Errorf("counts: %v", c)
	}
}

// TestSettingsPatchBodyEncodings: Graph reads a gzip body (the SDKs'
// compression handler sends one) like a plain one, and refuses another
// encoding with 415.
func TestSettingsPatchBodyEncodings(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.graphToken(t)
	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	_, _ = zw.Write([]byte(`{"settings":{"isOfficeStoreEnabled":false}}`))
	_ = zw.Close()
	gz := map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}
	if r := f.do(t, "PATCH", f.graph(pathAppsAndServices), tok, zipped.String(), gz); r.status != http.StatusNoContent {
		t.Fatalf("gzip PATCH: %d %s", r.status, r.body)
	}
	if s, _ := f.sim.Settings(f.tenant); s.IsOfficeStoreEnabled || !s.IsAppAndServicesTrialEnabled {
		t.Errorf("after the gzip PATCH: %+v", s)
	}
	br := map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}
	if r := f.do(t, "PATCH", f.graph(pathAppsAndServices), tok, `{"settings":{"isOfficeStoreEnabled":true}}`, br); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("br PATCH: want 415, got %d %s", r.status, r.body)
	}
	if r := f.do(t, "PATCH", f.graph(pathAuthorizationPolicy), tok, "not gzip", gz); r.status != http.StatusBadRequest {
		t.Errorf("a broken gzip body: want 400, got %d %s", r.status, r.body)
	}
}
