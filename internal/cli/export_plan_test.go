package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/cli/manifest"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const (
	copilot = "CFQ7TTC0MM8R"
	powerBI = "CFQ7TTC0H9MP"
	visio1  = "CFQ7TTC0HD33"
)

// readerPerms can read the policy, not write it.
var readerPerms = []string{m365sim.PermPolicyRead, m365sim.PermOrganizationRead}

// mixedTenant is a tenant where every product is Disabled except Copilot
// (trials only) and Power BI Pro (Enabled); SaaS offers are Disabled.
func mixedTenant(t *testing.T, f *fixture, perms ...string) testApp {
	t.Helper()
	a := f.newTenant(t, m365sim.TenantConfig{Name: "Contoso"}, perms...)
	products, err := f.sim.Products(a.tenant)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range products {
		v := m365sim.PolicyDisabled
		switch p.ID {
		case copilot:
			v = "OnlyTrialsWithoutPaymentMethod"
		case powerBI:
			v = m365sim.PolicyEnabled
		}
		if err := f.sim.SetPolicy(a.tenant, p.ID, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.sim.SetOfferTypePolicy(a.tenant, "SaaS", m365sim.PolicyDisabled); err != nil {
		t.Fatal(err)
	}
	return a
}

// export of a tenant, then plan of that export: no changes, exit 0; the
// export folds Disabled into default and names every product in a comment.
func TestExportThenPlanHasNoChanges(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, readerPerms...)
	exp := runArgs(t, append(append([]string{"export", "--default", "Disabled", "--name", "contoso", "-n", "m365"}, a.creds()...), f.endpoints()...)...)
	if exp.code != ExitOK {
		t.Fatalf("export: %s", exp)
	}
	for _, want := range []string{
		"default: Disabled", "mode: Observe", "- productID: " + copilot + " # Microsoft 365 Copilot", "policy: OnlyTrialsWithoutPaymentMethod",
		"- productID: " + powerBI + " # Power BI Pro", "- offerType: SaaS\n      policy: Disabled", "namespace: m365",
		"clientSecretRef:\n      name: contoso-credentials\n      key: clientSecret", "kubectl create secret generic contoso-credentials -n m365",
	} {
		if !strings.Contains(exp.out, want) {
			t.Errorf("export lacks %q:\n%s", want, exp.out)
		}
	}
	if n := strings.Count(exp.out, "- productID:"); n != 2 {
		t.Errorf("--default Disabled must list only the 2 exceptions, got %d", n)
	}
	assertNoSecrets(t, exp, a.secret)

	file := f.write(t, "contoso.yaml", exp.out)
	plan := runArgs(t, append(append([]string{"plan", "-f", file}, a.creds()...), f.endpoints()...)...)
	if plan.code != ExitOK || !strings.Contains(plan.out, "No changes") {
		t.Fatalf("plan of the export: %s", plan)
	}
	if writes := f.sim.Requests(a.tenant).Counts["licensing PUT"]; writes != 0 {
		t.Errorf("export and plan wrote %d times", writes)
	}
}

// A changed manifest shows exactly the products that differ, why, and exits 2.
func TestPlanShowsExactlyTheChanges(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, readerPerms...)
	exp := runArgs(t, append(append([]string{"export", "--default", "Disabled", "--name", "contoso"}, a.creds()...), f.endpoints()...)...)
	if exp.code != ExitOK {
		t.Fatalf("export: %s", exp)
	}
	// Copilot's rule now blocks it; Power BI Pro's rule is gone, so default applies.
	edited := strings.Replace(exp.out, "policy: OnlyTrialsWithoutPaymentMethod", "policy: Disabled", 1)
	edited = strings.Replace(edited, "    - productID: "+powerBI+" # Power BI Pro\n      policy: Enabled\n", "", 1)
	if edited == exp.out || strings.Contains(edited, powerBI) {
		t.Fatalf("the edit did not apply:\n%s", edited)
	}
	r := run(context.Background(), edited, append(append([]string{"plan", "-f", "-", "-o", "json"}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitChanges {
		t.Fatalf("want exit 2: %s", r)
	}
	var rep planReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.out)
	}
	want := []change{ // by product ID
		{Kind: "product", ID: powerBI, Name: "Power BI Pro", From: "Enabled", To: "Disabled", Why: "default"},
		{Kind: "product", ID: copilot, Name: "Microsoft 365 Copilot", From: "OnlyTrialsWithoutPaymentMethod", To: "Disabled", Why: "rule"},
	}
	if len(rep.Policies) != 1 || rep.Changes != 2 {
		t.Fatalf("report: %+v", rep)
	}
	if diff := cmp.Diff(want, rep.Policies[0].Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	text := run(context.Background(), edited, append(append([]string{"plan", "-f", "-"}, a.creds()...), f.endpoints()...)...)
	if text.code != ExitChanges || !strings.Contains(text.out, "Plan: 2 changes in 1 of 1 tenant.") ||
		!regexpMatch(`(?m)^  `+copilot+` +Microsoft 365 Copilot +OnlyTrialsWithoutPaymentMethod +Disabled +rule$`, text.out) {
		t.Errorf("text plan: %s", text)
	}
	if writes := f.sim.Requests(a.tenant).Counts["licensing PUT"]; writes != 0 {
		t.Errorf("plan wrote %d times", writes)
	}
}

// An invalid manifest fails offline with the CRD's message at its file and
// line, and nothing is sent to Microsoft.
func TestPlanInvalidManifest(t *testing.T) {
	f := newFixture(t)
	a := mixedTenant(t, f, readerPerms...)
	file := f.write(t, "bad.yaml", `apiVersion: commerce.tenantpolicy.io/v1alpha1
kind: TenantPurchasePolicy
metadata: {name: contoso, namespace: m365}
spec:
  tenantID: `+a.tenant+`
  auth: {clientID: `+a.clientID+`}
  default: Disabled
  products:
    - productID: copilot
      policy: Disabled
`)
	f.sim.ResetRequests(a.tenant)
	r := runArgs(t, append(append([]string{"plan", "-f", file}, a.creds()...), f.endpoints()...)...)
	if r.code != ExitError {
		t.Fatalf("want exit 1: %s", r)
	}
	for _, want := range []string{
		"error: " + file + ":6: TenantPurchasePolicy m365/contoso: spec.auth: Invalid value: auth must set exactly one of clientSecretRef, clientCertificateRef, workloadIdentity or refreshTokenRef",
		"error: " + file + ":9: TenantPurchasePolicy m365/contoso: spec.products[0].productID: Invalid value: \"copilot\": productID must be 12 upper-case letters or digits, e.g. CFQ7TTC0MM8R",
	} {
		if !strings.Contains(r.errOut, want) {
			t.Errorf("stderr lacks\n%s\n%s", want, r)
		}
	}
	if n := len(f.sim.Requests(a.tenant).Entries); n != 0 {
		t.Errorf("an invalid manifest must not reach Microsoft: %d requests", n)
	}

	set := f.write(t, "set.yaml", `apiVersion: commerce.tenantpolicy.io/v1alpha1
kind: TenantPurchasePolicySet
metadata: {name: baseline, namespace: partner}
spec:
  template:
    tenantID: `+a.tenant+`
    auth: {clientID: `+a.clientID+`, clientSecretRef: {name: partner-app, key: clientSecret}}
    default: Disabled
`)
	r = runArgs(t, append(append([]string{"plan", "-f", set}, a.creds()...), f.endpoints()...)...)
	for _, want := range []string{
		"error: " + set + ":4: TenantPurchasePolicySet partner/baseline: spec: Invalid value: a set needs tenants, discovery or both",
		"error: " + set + ":6: TenantPurchasePolicySet partner/baseline: spec.template.tenantID: Invalid value: the template applies to many tenants and must not set tenantID: list tenants in spec.tenants or discover them with spec.discovery",
	} {
		if r.code != ExitError || !strings.Contains(r.errOut, want) {
			t.Errorf("an invalid set: want exit 1 and\n%s\n%s", want, r)
		}
	}
}

// The exported manifest is accepted by a real API server as it is.
func TestExportAppliesToTheCluster(t *testing.T) {
	env, _ := startCluster(t)
	f := newFixture(t)
	a := mixedTenant(t, f, readerPerms...)
	ns := newNamespace(t, env)
	for _, fold := range []string{"Disabled", "Unmanaged"} {
		exp := runArgs(t, append(append([]string{"export", "--default", fold, "-n", ns, "--name", "contoso-" + strings.ToLower(fold)}, a.creds()...), f.endpoints()...)...)
		if exp.code != ExitOK {
			t.Fatalf("export: %s", exp)
		}
		docs, err := manifest.Parse("export", []byte(exp.out))
		if err != nil || len(docs) != 1 {
			t.Fatalf("parse: %v", err)
		}
		if err := env.Client.Create(context.Background(), docs[0].Object, client.FieldValidation("Strict")); err != nil {
			t.Fatalf("the API server refused the export (--default %s): %v\n%s", fold, err, exp.out)
		}
		var got v1.TenantPurchasePolicy
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(docs[0].Object), &got); err != nil {
			t.Fatal(err)
		}
		if got.Spec.Mode != v1.ModeObserve || string(got.Spec.Default) != fold {
			t.Errorf("stored spec: mode %s, default %s", got.Spec.Mode, got.Spec.Default)
		}
	}
}

func regexpMatch(pattern, s string) bool { return regexpMust(pattern).MatchString(s) }

// A policy set is planned tenant by tenant with the spec each child gets:
// the template with the tenant's overrides (plan.TenantSpec, the set
// controller's merge). Discovered customers are named as not planned.
func TestPlanPolicySet(t *testing.T) {
	f := newFixture(t)
	contoso := mixedTenant(t, f, readerPerms...)
	fabrikam := mixedTenant(t, f) // the partner's multi-tenant app, consented in both tenants
	if err := f.sim.RegisterApp(fabrikam.tenant, m365sim.App{ClientID: contoso.clientID, Secret: contoso.secret, Permissions: readerPerms}); err != nil {
		t.Fatal(err)
	}
	set := `apiVersion: commerce.tenantpolicy.io/v1alpha1
kind: TenantPurchasePolicySet
metadata: {name: baseline, namespace: partner}
spec:
  template:
    auth:
      clientID: ` + contoso.clientID + `
      clientSecretRef: {name: partner-app, key: clientSecret}
    mode: Enforce
    default: Disabled
    products:
      - {productID: ` + copilot + `, policy: OnlyTrialsWithoutPaymentMethod}
      - {productID: ` + powerBI + `, policy: Enabled}
  tenants:
    - tenantID: ` + contoso.tenant + `
      name: contoso
    - tenantID: ` + fabrikam.tenant + `
      name: fabrikam
      overrides:
        mode: Observe
        products:
          - {productID: ` + powerBI + `, policy: Disabled}
  discovery:
    delegatedAdminCustomers:
      partnerTenantID: ` + contoso.tenant + `
`
	creds := []string{"--client-id", contoso.clientID, "--client-secret-file", contoso.secretFile}
	r := run(context.Background(), set, append(append([]string{"plan", "-f", "-", "-o", "json"}, creds...), f.endpoints()...)...)
	if r.code != ExitChanges {
		t.Fatalf("want exit 2: %s", r)
	}
	var rep planReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.out)
	}
	if strings.Contains(r.out, "null") {
		t.Errorf("-o json: a tenant without changes has \"changes\": [], not null:\n%s", r.out)
	}
	if len(rep.Policies) != 2 || rep.Changes != 1 || len(rep.Warnings) != 1 {
		t.Fatalf("want 2 tenants, 1 change and the discovery warning: %+v", rep)
	}
	got := map[string]policyPlan{}
	for _, p := range rep.Policies {
		got[p.Tenant] = p
	}
	if c := got["contoso"]; c.TenantID != contoso.tenant || c.Mode != v1.ModeEnforce || len(c.Changes) != 0 || c.Kind != "TenantPurchasePolicySet" || c.Name != "baseline" {
		t.Errorf("contoso (the template): %+v", c)
	}
	fab := got["fabrikam"]
	want := []change{{Kind: "product", ID: powerBI, Name: "Power BI Pro", From: "Enabled", To: "Disabled", Why: "rule"}}
	if diff := cmp.Diff(want, fab.Changes); diff != "" || fab.Mode != v1.ModeObserve || fab.TenantID != fabrikam.tenant {
		t.Errorf("fabrikam (template with overrides): mode %s, changes (-want +got):\n%s", fab.Mode, diff)
	}
	if !strings.Contains(rep.Warnings[0], "not planned, only the 2 listed tenants") {
		t.Errorf("warning: %q", rep.Warnings[0])
	}

	text := run(context.Background(), set, append(append([]string{"plan", "-f", "-"}, creds...), f.endpoints()...)...)
	for _, want := range []string{
		"TenantPurchasePolicySet partner/baseline, tenant " + fabrikam.tenant + " (fabrikam) (<stdin>:17), Observe: 1 change",
		"Plan: 1 change in 1 of 2 tenants.",
	} {
		if text.code != ExitChanges || !strings.Contains(text.out, want) {
			t.Errorf("text plan lacks %q: %s", want, text)
		}
	}
	for _, tenant := range []string{contoso.tenant, fabrikam.tenant} {
		if writes := f.sim.Requests(tenant).Counts["licensing PUT"]; writes != 0 {
			t.Errorf("plan wrote %d times in %s", writes, tenant)
		}
	}
}
