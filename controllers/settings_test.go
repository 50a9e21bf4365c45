package controllers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// fakeSettings is one tenant's two settings resources, as Graph keeps them:
// every call is logged ("GET authorizationPolicy", "PATCH appsAndServices
// isOfficeStoreEnabled=false"), and fail, when it returns an error for a
// call, answers instead.
type fakeSettings struct {
	mu     sync.Mutex
	values map[v1.SettingsResource]graph.Settings
	calls  []string
	fail   func(method string, res v1.SettingsResource) error
}

func newFakeSettings() *fakeSettings {
	return &fakeSettings{values: map[v1.SettingsResource]graph.Settings{
		v1.ResourceAuthorizationPolicy: {graph.FieldAllowedToSignUpEmailBasedSubscriptions: true, graph.FieldAllowEmailVerifiedUsersToJoinOrganization: true},
		v1.ResourceAppsAndServices:     {graph.FieldIsAppAndServicesTrialEnabled: true, graph.FieldIsOfficeStoreEnabled: true},
	}}
}

func (f *fakeSettings) For(string, azcore.TokenCredential) TenantSettingsAPI {
	return fakeSettingsAPI{f}
}

func (f *fakeSettings) set(res v1.SettingsResource, field string, v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[res][field] = v
}

// takeCalls returns the calls since the last takeCalls.
func (f *fakeSettings) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

func (f *fakeSettings) get(res v1.SettingsResource) (graph.Settings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "GET "+string(res))
	if f.fail != nil {
		if err := f.fail("GET", res); err != nil {
			return nil, err
		}
	}
	out := graph.Settings{}
	for k, v := range f.values[res] {
		out[k] = v
	}
	return out, nil
}

func (f *fakeSettings) patch(res v1.SettingsResource, set graph.Settings) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var fields []string
	for k, v := range set {
		fields = append(fields, k+"="+map[bool]string{true: "true", false: "false"}[v])
	}
	slices.Sort(fields)
	f.calls = append(f.calls, "PATCH "+string(res)+" "+strings.Join(fields, ","))
	if f.fail != nil {
		if err := f.fail("PATCH", res); err != nil {
			return err
		}
	}
	for k, v := range set {
		f.values[res][k] = v
	}
	return nil
}

type fakeSettingsAPI struct{ f *fakeSettings }

func (a fakeSettingsAPI) GetAuthorizationPolicy(context.Context) (graph.Settings, error) {
	return a.f.get(v1.ResourceAuthorizationPolicy)
}
func (a fakeSettingsAPI) UpdateAuthorizationPolicy(_ context.Context, s graph.Settings) error {
	return a.f.patch(v1.ResourceAuthorizationPolicy, s)
}
func (a fakeSettingsAPI) GetAppsAndServices(context.Context) (graph.Settings, error) {
	return a.f.get(v1.ResourceAppsAndServices)
}
func (a fakeSettingsAPI) UpdateAppsAndServices(_ context.Context, s graph.Settings) error {
	return a.f.patch(v1.ResourceAppsAndServices, s)
}

// settingsCluster is a fake cluster whose tenant has every product Disabled
// (so products write nothing) and the settings of fs.
func settingsCluster(t *testing.T, p *v1.TenantPurchasePolicy, fs *fakeSettings) *fakeCluster {
	t.Helper()
	fc := newFakeCluster(t, map[string]*fakeTenant{tenantLower: newFakeTenant(map[string]string{"A": "Disabled", "B": "Disabled"})}, interceptor.Funcs{}, p)
	fc.r.Settings = fs
	return fc
}

func allSettings(v v1.SettingPolicy) *v1.TenantSettings {
	return &v1.TenantSettings{EmailBasedSubscriptions: v, EmailVerifiedUsersJoin: v, TrialsOnBehalfOfOrganization: v, OfficeStore: v}
}

func settingRow(t *testing.T, p *v1.TenantPurchasePolicy, name v1.TenantSettingName) v1.TenantSettingStatus {
	t.Helper()
	for _, r := range p.Status.TenantSettings {
		if r.Setting == name {
			return r
		}
	}
	t.Fatalf("status has no tenant setting %s: %+v", name, p.Status.TenantSettings)
	return v1.TenantSettingStatus{}
}

func mustReconcile(t *testing.T, fc *fakeCluster, p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	t.Helper()
	fc.now = fc.now.Add(time.Minute)
	out, err := fc.reconcile(p)
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	return out
}

// TestTenantSettingsAdoptEnforceAndConfirm: the first run reads each
// resource once, records the adoption values (before the PATCH), and sends
// one PATCH per resource with exactly its differing settings; the next
// read confirms them (a correction each) and the tenant then matches.
func TestTenantSettingsAdoptEnforceAndConfirm(t *testing.T) {
	p := testPolicy("contoso", tenantLower, time.Now())
	p.Spec.TenantSettings = allSettings(v1.SettingDisabled)
	p.Spec.TenantSettings.EmailVerifiedUsersJoin = v1.SettingEnabled // already so: no write
	fs := newFakeSettings()
	fc := settingsCluster(t, p, fs)
	var adoptedAtPatch []v1.TenantSettingStatus
	fs.fail = func(method string, _ v1.SettingsResource) error {
		if method == "PATCH" && adoptedAtPatch == nil {
			adoptedAtPatch = fc.get(p).Status.TenantSettings
		}
		return nil
	}

	got := mustReconcile(t, fc, p)
	want := []string{"GET authorizationPolicy", "GET appsAndServices", "PATCH authorizationPolicy allowedToSignUpEmailBasedSubscriptions=false",
		"PATCH appsAndServices isAppAndServicesTrialEnabled=false,isOfficeStoreEnabled=false"}
	if diff := cmp.Diff(want, fs.takeCalls()); diff != "" {
		t.Errorf("first run's calls (-want +got):\n%s", diff)
	}
	if len(adoptedAtPatch) != 4 || adoptedAtPatch[0].AdoptedValue != "Enabled" || adoptedAtPatch[0].PendingValue != "" {
		t.Errorf("adoption values at the first PATCH: %+v", adoptedAtPatch)
	}
	for _, name := range []v1.TenantSettingName{v1.SettingEmailBasedSubscriptions, v1.SettingTrialsOnBehalfOfOrganization, v1.SettingOfficeStore} {
		row := settingRow(t, got, name)
		if row.AdoptedValue != "Enabled" || row.PendingValue != "Disabled" || row.Corrections != 0 {
			t.Errorf("%s after the first run: %+v", name, row)
		}
	}
	if len(got.Status.DriftHistory) != 0 || got.Status.Counters.DriftDetected != 0 {
		t.Errorf("adoption recorded as drift: %+v", got.Status.DriftHistory)
	}
	if ev := fc.events(v1.EventAdopted); len(ev) != 2 || !strings.Contains(strings.Join(ev, "\n"), "officeStore as Enabled (wants Disabled)") {
		t.Errorf("Adopted events: %v", ev)
	}

	got = mustReconcile(t, fc, p)
	if diff := cmp.Diff([]string{"GET authorizationPolicy", "GET appsAndServices"}, fs.takeCalls()); diff != "" {
		t.Errorf("second run's calls: the floor is one GET per resource (-want +got):\n%s", diff)
	}
	row := settingRow(t, got, v1.SettingOfficeStore)
	if row.Observed != "Disabled" || row.PendingValue != "" || row.Corrections != 1 || row.LastCorrectionTime == nil {
		t.Errorf("officeStore once confirmed: %+v", row)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1.DriftedCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("Drifted: %+v", c)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, v1.TenantSettingsDegradedCondition); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("TenantSettingsDegraded: %+v", c)
	}
	if s := got.Status.Summary; s.Managed != 2+4 || s.Compliant != 2+4 || s.Drifted != 0 {
		t.Errorf("summary: %+v", s)
	}
}

// TestTenantSettingsFloorReadsOnlyManagedResources: a policy that manages
// only officeStore never reads the authorization policy; one that manages
// nothing reads neither.
func TestTenantSettingsFloorReadsOnlyManagedResources(t *testing.T) {
	p := testPolicy("contoso", tenantLower, time.Now())
	p.Spec.TenantSettings = &v1.TenantSettings{OfficeStore: v1.SettingEnabled, EmailBasedSubscriptions: v1.SettingUnmanaged}
	fs := newFakeSettings()
	fc := settingsCluster(t, p, fs)
	got := mustReconcile(t, fc, p)
	if diff := cmp.Diff([]string{"GET appsAndServices"}, fs.takeCalls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(got.Status.TenantSettings) != 1 {
		t.Errorf("rows: %+v", got.Status.TenantSettings)
	}
	cur := fc.get(p)
	cur.Spec.TenantSettings = nil
	if err := fc.c.Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	got = mustReconcile(t, fc, p)
	if calls := fs.takeCalls(); len(calls) != 0 {
		t.Errorf("nothing managed, yet: %v", calls)
	}
	if len(got.Status.TenantSettings) != 0 || meta.FindStatusCondition(got.Status.Conditions, v1.TenantSettingsDegradedCondition) != nil {
		t.Errorf("rows %+v, conditions %+v", got.Status.TenantSettings, got.Status.Conditions)
	}
}

// TestTenantSettingsDriftEachSetting: for each setting, someone flips it
// by hand after convergence. Enforce records one drift naming the setting,
// PATCHes only that property, and the next read completes the correction;
// Observe records the same drift once and writes nothing.
func TestTenantSettingsDriftEachSetting(t *testing.T) {
	for _, ts := range plan.TenantSettings {
		for _, mode := range []v1.Mode{v1.ModeEnforce, v1.ModeObserve} {
			t.Run(string(ts.Name)+"/"+string(mode), func(t *testing.T) {
				p := testPolicy("contoso", tenantLower, time.Now())
				p.Spec.Mode = mode
				p.Spec.TenantSettings = &v1.TenantSettings{}
				*settingField(p.Spec.TenantSettings, ts) = v1.SettingDisabled
				fs := newFakeSettings()
				fs.set(ts.Resource.Name, ts.Field, false)
				fc := settingsCluster(t, p, fs)
				mustReconcile(t, fc, p)
				fs.takeCalls()

				fs.set(ts.Resource.Name, ts.Field, true) // an admin, by hand
				got := mustReconcile(t, fc, p)
				wantCalls := []string{"GET " + string(ts.Resource.Name)}
				if mode == v1.ModeEnforce {
					wantCalls = append(wantCalls, "PATCH "+string(ts.Resource.Name)+" "+ts.Field+"=false")
				}
				if diff := cmp.Diff(wantCalls, fs.takeCalls()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if len(got.Status.DriftHistory) != 1 || got.Status.DriftHistory[0].Setting != ts.Name || got.Status.DriftHistory[0].ProductID != "" ||
					got.Status.DriftHistory[0].Expected != "Disabled" || got.Status.DriftHistory[0].Found != "Enabled" {
					t.Fatalf("drift history: %+v", got.Status.DriftHistory)
				}
				if ev := fc.rec.reasons(v1.EventDriftDetected); len(ev) != 1 || !strings.Contains(ev[0], "tenant setting "+string(ts.Name)) {
					t.Errorf("DriftDetected: %v", ev)
				}
				c := meta.FindStatusCondition(got.Status.Conditions, v1.DriftedCondition)
				if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, string(ts.Name)) {
					t.Errorf("Drifted: %+v", c)
				}

				got = mustReconcile(t, fc, p)
				fs.takeCalls()
				d := got.Status.DriftHistory
				switch mode {
				case v1.ModeEnforce:
					if len(d) != 1 || d[0].Action != v1.DriftCorrected || got.Status.Counters.DriftCorrected != 1 {
						t.Errorf("after the confirming read: %+v, counters %+v", d, got.Status.Counters)
					}
					if ev := fc.rec.reasons(v1.EventDriftCorrected); len(ev) != 1 || !strings.Contains(ev[0], string(ts.Name)) {
						t.Errorf("DriftCorrected: %v", ev)
					}
					if row := settingRow(t, got, ts.Name); row.Corrections != 1 || row.Observed != "Disabled" {
						t.Errorf("row: %+v", row)
					}
				case v1.ModeObserve:
					if len(d) != 1 || d[0].Action != v1.DriftReported || got.Status.Counters.DriftDetected != 1 {
						t.Errorf("Observe records a drift once: %+v, counters %+v", d, got.Status.Counters)
					}
				}
			})
		}
	}
}

// settingField points at the spec field of ts.
func settingField(t *v1.TenantSettings, ts plan.Setting) *v1.SettingPolicy {
	switch ts.Name {
	case v1.SettingEmailBasedSubscriptions:
		return &t.EmailBasedSubscriptions
	case v1.SettingEmailVerifiedUsersJoin:
		return &t.EmailVerifiedUsersJoin
	case v1.SettingTrialsOnBehalfOfOrganization:
		return &t.TrialsOnBehalfOfOrganization
	}
	return &t.OfficeStore
}

// TestTenantSettingsDegradeOnlyTheirResource: a 403 (or a cloud without the
// beta resource) for one resource leaves its settings unknown and sets
// TenantSettingsDegraded with a precise reason; the other resource and the
// products are still enforced and Ready stays True.
func TestTenantSettingsDegradeOnlyTheirResource(t *testing.T) {
	cases := map[string]struct {
		method          string
		res             v1.SettingsResource
		err             error
		reason, message string
	}{
		"read forbidden (beta)": {method: "GET", res: v1.ResourceAppsAndServices,
			err:    &m365.Error{Op: graph.OpGetAppsAndServices, Kind: m365.Forbidden, StatusCode: 403, Code: "Authorization_RequestDenied"},
			reason: v1.ReasonForbidden, message: "missing permission OrgSettings-AppsAndServices.Read.All to read trialsOnBehalfOfOrganization, officeStore"},
		"write forbidden (v1.0)": {method: "PATCH", res: v1.ResourceAuthorizationPolicy,
			err:    &m365.Error{Op: graph.OpUpdateAuthorizationPolicy, Kind: m365.Forbidden, StatusCode: 403},
			reason: v1.ReasonForbidden, message: "missing permission Policy.ReadWrite.Authorization to write emailBasedSubscriptions"},
		"beta not in this cloud (404)": {method: "GET", res: v1.ResourceAppsAndServices,
			err:    &m365.Error{Op: graph.OpGetAppsAndServices, Kind: m365.NotFound, StatusCode: 404},
			reason: v1.ReasonNotOfferedInThisCloud, message: "this cloud does not offer GET/PATCH /beta/admin/appsAndServices (beta)"},
		"beta not in this cloud (400)": {method: "GET", res: v1.ResourceAppsAndServices,
			err:    &m365.Error{Op: graph.OpGetAppsAndServices, Kind: m365.BadRequest, StatusCode: 400, Reason: "Resource not found for the segment 'appsAndServices'."},
			reason: v1.ReasonNotOfferedInThisCloud, message: "this cloud does not offer"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := testPolicy("contoso", tenantLower, time.Now())
			p.Spec.TenantSettings = &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingDisabled}
			fs := newFakeSettings()
			fs.fail = func(method string, res v1.SettingsResource) error {
				if method == tc.method && res == tc.res {
					return tc.err
				}
				return nil
			}
			fc := settingsCluster(t, p, fs)
			fc.api.tenants[tenantLower].values["A"] = "Enabled" // a product to enforce
			got := mustReconcile(t, fc, p)
			if v, _ := fc.api.tenants[tenantLower].snapshot(); v["A"] != "Disabled" {
				t.Errorf("products not enforced: %v", v)
			}
			c := meta.FindStatusCondition(got.Status.Conditions, v1.TenantSettingsDegradedCondition)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
				t.Fatalf("TenantSettingsDegraded: %+v", c)
			}
			if r := meta.FindStatusCondition(got.Status.Conditions, v1.ReadyCondition); r == nil || r.Status != metav1.ConditionTrue {
				t.Errorf("Ready: %+v", r)
			}
			other := v1.ResourceAuthorizationPolicy
			if tc.res == other {
				other = v1.ResourceAppsAndServices
			}
			for _, row := range got.Status.TenantSettings {
				switch {
				case row.Resource == other && (row.UnknownReason != "" || row.PendingValue != "Disabled"):
					t.Errorf("the other resource was not enforced: %+v", row)
				case row.Resource == tc.res && tc.method == "GET" && row.UnknownReason != tc.reason:
					t.Errorf("unread setting without its reason: %+v", row)
				}
			}
		})
	}
}

// TestTenantSettingsRestore: deleting a Restore policy writes back the
// adoption values of its settings, one PATCH per resource with the values
// that differ.
func TestTenantSettingsRestore(t *testing.T) {
	p := testPolicy("contoso", tenantLower, time.Now())
	p.Spec.DeletionPolicy = v1.DeletionRestore
	p.Spec.TenantSettings = allSettings(v1.SettingDisabled)
	fs := newFakeSettings()
	fs.set(v1.ResourceAuthorizationPolicy, graph.FieldAllowEmailVerifiedUsersToJoinOrganization, false) // adopted as Disabled
	fc := settingsCluster(t, p, fs)
	mustReconcile(t, fc, p)
	mustReconcile(t, fc, p)
	fs.takeCalls()

	if err := fc.c.Delete(context.Background(), fc.get(p)); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.reconcile(p); err != nil {
		t.Fatalf("deletion run: %v", err)
	}
	want := []string{"GET authorizationPolicy", "PATCH authorizationPolicy allowedToSignUpEmailBasedSubscriptions=true",
		"GET appsAndServices", "PATCH appsAndServices isAppAndServicesTrialEnabled=true,isOfficeStoreEnabled=true"}
	if diff := cmp.Diff(want, fs.takeCalls()); diff != "" {
		t.Errorf("restore calls (-want +got):\n%s", diff)
	}
	if fc.get(p) != nil {
		t.Errorf("finalizer kept")
	}
	if ev := fc.rec.reasons(v1.EventRestored); len(ev) == 0 || !strings.Contains(strings.Join(ev, "\n"), "officeStore=Enabled") {
		t.Errorf("Restored: %v", ev)
	}
}

// TestSettingFieldsAreGraphs: internal/plan spells each setting's Graph
// property as the Graph client reads and writes it.
func TestSettingFieldsAreGraphs(t *testing.T) {
	want := map[v1.TenantSettingName]string{
		v1.SettingEmailBasedSubscriptions:      graph.FieldAllowedToSignUpEmailBasedSubscriptions,
		v1.SettingEmailVerifiedUsersJoin:       graph.FieldAllowEmailVerifiedUsersToJoinOrganization,
		v1.SettingTrialsOnBehalfOfOrganization: graph.FieldIsAppAndServicesTrialEnabled,
		v1.SettingOfficeStore:                  graph.FieldIsOfficeStoreEnabled,
	}
	if len(plan.TenantSettings) != len(want) {
		t.Fatalf("%d settings, want %d", len(plan.TenantSettings), len(want))
	}
	for _, ts := range plan.TenantSettings {
		if ts.Field != want[ts.Name] {
			t.Errorf("%s: field %q, want %q", ts.Name, ts.Field, want[ts.Name])
		}
	}
}
