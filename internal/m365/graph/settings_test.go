package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

const (
	settingsClientID = "99999999-8888-7777-6666-555555555555"
	policyOnlyClient = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

// settingsSim is startSim with an app that may read and write both settings
// resources, and one that may only read and write the authorization policy.
func settingsSim(t *testing.T) *m365sim.Server {
	t.Helper()
	sim, _ := startSim(t)
	for id, perms := range map[string][]string{
		settingsClientID: {m365sim.PermPolicyReadWriteAuthorization, m365sim.PermAppsAndServicesReadWrite},
		policyOnlyClient: {m365sim.PermPolicyReadWriteAuthorization},
	} {
		if err := sim.RegisterApp(simTenant, m365sim.App{ClientID: id, Secret: simSecret, Permissions: perms}); err != nil {
			t.Fatalf("RegisterApp: %v", err)
		}
	}
	return sim
}

// TestSettingsReadAndWriteOnlyTheGivenFields: both resources are read with
// their defaults, and a PATCH sends exactly the properties it was given
// (the simulator records the fields of each PATCH body).
func TestSettingsReadAndWriteOnlyTheGivenFields(t *testing.T) {
	sim := settingsSim(t)
	api := simClient(t, sim).For(simTenant, simCredential(t, sim, settingsClientID))
	ctx := context.Background()

	authz, err := api.GetAuthorizationPolicy(ctx)
	if err != nil {
		t.Fatalf("GetAuthorizationPolicy: %v", err)
	}
	if diff := cmp.Diff(graph.Settings{graph.FieldAllowedToSignUpEmailBasedSubscriptions: true, graph.FieldAllowEmailVerifiedUsersToJoinOrganization: true}, authz); diff != "" {
		t.Errorf("authorization policy (-want +got):\n%s", diff)
	}
	apps, err := api.GetAppsAndServices(ctx)
	if err != nil {
		t.Fatalf("GetAppsAndServices: %v", err)
	}
	if diff := cmp.Diff(graph.Settings{graph.FieldIsAppAndServicesTrialEnabled: true, graph.FieldIsOfficeStoreEnabled: true}, apps); diff != "" {
		t.Errorf("apps and services (-want +got):\n%s", diff)
	}

	if err := api.UpdateAuthorizationPolicy(ctx, graph.Settings{graph.FieldAllowedToSignUpEmailBasedSubscriptions: false}); err != nil {
		t.Fatalf("UpdateAuthorizationPolicy: %v", err)
	}
	if err := api.UpdateAppsAndServices(ctx, graph.Settings{graph.FieldIsAppAndServicesTrialEnabled: false}); err != nil {
		t.Fatalf("UpdateAppsAndServices: %v", err)
	}
	writes, _ := sim.SettingsWrites(simTenant)
	var got [][]string
	for _, w := range writes {
		got = append(got, append([]string{w.Resource}, w.Fields...))
	}
	want := [][]string{{m365sim.SettingsAuthorizationPolicy, "allowedToSignUpEmailBasedSubscriptions"}, {m365sim.SettingsAppsAndServices, "settings.isAppAndServicesTrialEnabled"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PATCH fields (-want +got):\n%s", diff)
	}
	st, _ := sim.Settings(simTenant)
	if st.AllowedToSignUpEmailBasedSubscriptions || !st.AllowEmailVerifiedUsersToJoinOrganization || st.IsAppAndServicesTrialEnabled || !st.IsOfficeStoreEnabled {
		t.Errorf("settings after the writes: %+v", st)
	}
}

// TestAppsAndServicesValueEnvelope: the docs' example wraps the entity in
// "value"; it reads the same.
func TestAppsAndServicesValueEnvelope(t *testing.T) {
	sim := settingsSim(t)
	mode := m365sim.AppsAndServicesValueWrapped
	off := false
	if _, err := sim.UpdateSettings(simTenant, m365sim.TenantSettingsUpdate{AppsAndServicesMode: &mode, IsOfficeStoreEnabled: &off}); err != nil {
		t.Fatal(err)
	}
	apps, err := simClient(t, sim).For(simTenant, simCredential(t, sim, settingsClientID)).GetAppsAndServices(context.Background())
	if err != nil {
		t.Fatalf("GetAppsAndServices: %v", err)
	}
	if diff := cmp.Diff(graph.Settings{graph.FieldIsAppAndServicesTrialEnabled: true, graph.FieldIsOfficeStoreEnabled: false}, apps); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAppsAndServicesNotOfferedAndForbidden: a cloud without the beta
// resource (404, 400) is NotOffered; a missing permission is Forbidden and
// not NotOffered.
func TestAppsAndServicesNotOfferedAndForbidden(t *testing.T) {
	sim := settingsSim(t)
	ctx := context.Background()
	forbidden := simClient(t, sim).For(simTenant, simCredential(t, sim, policyOnlyClient))
	_, err := forbidden.GetAppsAndServices(ctx)
	if m365.KindOf(err) != m365.Forbidden || graph.NotOffered(err) {
		t.Errorf("without the permission: %v (kind %s)", err, m365.KindOf(err))
	}
	if _, err := forbidden.GetAuthorizationPolicy(ctx); err != nil {
		t.Errorf("authorization policy with its permission: %v", err)
	}
	api := simClient(t, sim).For(simTenant, simCredential(t, sim, settingsClientID))
	for _, mode := range []m365sim.AppsAndServicesMode{m365sim.AppsAndServicesNotFound, m365sim.AppsAndServicesBadRequest} {
		if _, err := sim.UpdateSettings(simTenant, m365sim.TenantSettingsUpdate{AppsAndServicesMode: &mode}); err != nil {
			t.Fatal(err)
		}
		_, err := api.GetAppsAndServices(ctx)
		if !graph.NotOffered(err) {
			t.Errorf("%s: GET %v is not NotOffered", mode, err)
		}
		if err := api.UpdateAppsAndServices(ctx, graph.Settings{graph.FieldIsOfficeStoreEnabled: false}); !graph.NotOffered(err) {
			t.Errorf("%s: PATCH %v is not NotOffered", mode, err)
		}
	}
	if _, err := api.GetAuthorizationPolicy(ctx); err != nil || graph.NotOffered(err) {
		t.Errorf("v1.0 authorization policy: %v", err)
	}
}

// TestAppsAndServicesOnTheSharedPipeline: the beta call goes through the
// pipeline of every Graph call: a redirect is not followed (nothing reaches
// the leak sink), and a 429 is Throttled and holds the tenant's next Graph
// call, v1.0 included, until its Retry-After.
func TestAppsAndServicesOnTheSharedPipeline(t *testing.T) {
	sim := settingsSim(t)
	api := simClient(t, sim).For(simTenant, simCredential(t, sim, settingsClientID))
	ctx := context.Background()
	if err := sim.InjectFault(simTenant, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/beta/admin/appsAndServices", Status: 307, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := api.UpdateAppsAndServices(ctx, graph.Settings{graph.FieldIsOfficeStoreEnabled: false}); m365.KindOf(err) != m365.Redirected {
		t.Errorf("a 307 to the beta PATCH: want Redirected, got %v", err)
	}
	if leaked := sim.LeakedRequests(); len(leaked) != 0 {
		t.Errorf("requests reached the leak sink: %+v", leaked)
	}
	if st, _ := sim.Settings(simTenant); !st.IsOfficeStoreEnabled {
		t.Errorf("the redirected PATCH was applied")
	}
	if err := sim.InjectFault(simTenant, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/beta/admin/appsAndServices", Status: 429, RetryAfter: "30", Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := api.GetAppsAndServices(ctx)
	if e, ok := m365.AsError(err); !ok || e.Kind != m365.Throttled || e.RetryAfter < 29*time.Second {
		t.Fatalf("a 429 with Retry-After: 30: %v", err)
	}
	before := len(sim.Requests(simTenant).Entries)
	if _, err := api.GetAuthorizationPolicy(ctx); m365.KindOf(err) != m365.Throttled {
		t.Errorf("the next Graph call within the Retry-After: want Throttled by the gate, got %v", err)
	}
	if after := len(sim.Requests(simTenant).Entries); after != before {
		t.Errorf("%d request(s) left before the Retry-After passed", after-before)
	}
}
