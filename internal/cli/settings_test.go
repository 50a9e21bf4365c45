package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// settingsPerms can read the products and both settings resources.
var settingsPerms = append([]string{m365sim.PermPolicyReadAll, m365sim.PermAppsAndServicesRead}, readerPerms...)

// export prints the four tenant settings with their values; plan of that
// export reads both resources and finds no changes; a manifest with one
// setting changed shows exactly that setting and exits 2. Nothing is written.
func TestExportThenPlanTenantSettings(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, settingsPerms...)
	off := false
	if _, err := f.sim.UpdateSettings(a.tenant, m365sim.TenantSettingsUpdate{AllowedToSignUpEmailBasedSubscriptions: &off}); err != nil {
		t.Fatal(err)
	}
	exp := runArgs(t, append(append([]string{"export", "--default", "Disabled", "--name", "contoso"}, a.creds()...), f.endpoints()...)...)
	if exp.code != ExitOK || exp.errOut != "" {
		t.Fatalf("export: %s", exp)
	}
	for _, want := range []string{"  tenantSettings:\n", "    emailBasedSubscriptions: Disabled # email-based subscriptions\n",
		"    emailVerifiedUsersJoin: Enabled", "    trialsOnBehalfOfOrganization: Enabled", "    officeStore: Enabled # the Office Store\n"} {
		if !strings.Contains(exp.out, want) {
			t.Errorf("export lacks %q:\n%s", want, exp.out)
		}
	}

	file := f.write(t, "contoso.yaml", exp.out)
	plan := runArgs(t, append(append([]string{"plan", "-f", file}, a.creds()...), f.endpoints()...)...)
	if plan.code != ExitOK || !strings.Contains(plan.out, "No changes") || strings.Contains(plan.out, "warning") {
		t.Fatalf("plan of the export: %s", plan)
	}
	counts := f.sim.Requests(a.tenant).Counts
	if counts["graph GET authorizationPolicy"] != 2 || counts["graph GET appsAndServices"] != 2 {
		t.Errorf("export and plan read each resource once each: %v", counts)
	}
	if counts["graph PATCH"] != 0 || counts["licensing PUT"] != 0 {
		t.Errorf("export and plan wrote: %v", counts)
	}

	edited := strings.Replace(exp.out, "officeStore: Enabled", "officeStore: Disabled", 1)
	r := run(context.Background(), edited, append(append([]string{"plan", "-f", "-", "-o", "json"}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitChanges {
		t.Fatalf("want exit 2: %s", r)
	}
	var rep planReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.out)
	}
	want := []change{{Kind: "tenantSetting", ID: "officeStore", Name: "the Office Store", From: "Enabled", To: "Disabled", Why: "tenantSettings"}}
	if len(rep.Policies) != 1 || rep.Changes != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if diff := cmp.Diff(want, rep.Policies[0].Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	text := run(context.Background(), edited, append(append([]string{"plan", "-f", "-"}, a.creds()...), f.endpoints()...)...)
	if text.code != ExitChanges || !strings.Contains(text.out, "Plan: 1 change in 1 of 1 tenant.") ||
		!regexpMatch(`(?m)^  tenant setting officeStore +the Office Store +Enabled +Disabled +tenantSettings$`, text.out) {
		t.Errorf("text plan: %s", text)
	}
}

// Without the permission to read one resource, export leaves its settings
// Unmanaged and plan warns naming the permission, while the products and
// the other resource are planned as usual.
func TestPlanTenantSettingsForbiddenWarns(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, append([]string{m365sim.PermPolicyReadAll}, readerPerms...)...)
	exp := runArgs(t, append(append([]string{"export", "--default", "Disabled", "--name", "contoso"}, a.creds()...), f.endpoints()...)...)
	if exp.code != ExitOK || !strings.Contains(exp.errOut, "missing Graph permission OrgSettings-AppsAndServices.Read.All") ||
		!strings.Contains(exp.out, "officeStore: Unmanaged") || !strings.Contains(exp.out, "emailBasedSubscriptions: Enabled") {
		t.Fatalf("export: %s", exp)
	}
	edited := strings.Replace(exp.out, "officeStore: Unmanaged", "officeStore: Disabled", 1)
	r := run(context.Background(), edited, append(append([]string{"plan", "-f", "-"}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitOK || !strings.Contains(r.out, "No changes") ||
		strings.Count(r.out, "warning: missing Graph permission OrgSettings-AppsAndServices.Read.All to read trialsOnBehalfOfOrganization and officeStore") != 1 {
		t.Fatalf("plan: %s", r)
	}
	// A product change is still planned next to the warning.
	edited = strings.Replace(edited, "policy: OnlyTrialsWithoutPaymentMethod", "policy: Disabled", 1)
	r = run(context.Background(), edited, append(append([]string{"plan", "-f", "-"}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitChanges || !strings.Contains(r.out, "Plan: 1 change") || !strings.Contains(r.out, "OrgSettings-AppsAndServices.Read.All") {
		t.Fatalf("plan with a product change: %s", r)
	}
}

// A cloud without the beta resource: plan says so and plans the rest.
func TestPlanTenantSettingsNotOffered(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, settingsPerms...)
	mode := m365sim.AppsAndServicesBadRequest
	if _, err := f.sim.UpdateSettings(a.tenant, m365sim.TenantSettingsUpdate{AppsAndServicesMode: &mode}); err != nil {
		t.Fatal(err)
	}
	exp := runArgs(t, append(append([]string{"export", "--default", "Disabled", "--name", "contoso"}, a.creds()...), f.endpoints()...)...)
	if exp.code != ExitOK || !strings.Contains(exp.errOut, "this cloud does not offer GET/PATCH /beta/admin/appsAndServices (beta)") {
		t.Fatalf("export: %s", exp)
	}
	edited := strings.Replace(exp.out, "trialsOnBehalfOfOrganization: Unmanaged", "trialsOnBehalfOfOrganization: Disabled", 1)
	r := run(context.Background(), edited, append(append([]string{"plan", "-f", "-"}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitOK || !strings.Contains(r.out, "warning: this cloud does not offer GET/PATCH /beta/admin/appsAndServices (beta)") {
		t.Fatalf("plan: %s", r)
	}
}
