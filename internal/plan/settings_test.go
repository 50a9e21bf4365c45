package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// ComputeSettings lists only the managed settings, in the spec's order, with
// the value read (empty when its resource was not read or lacked it); only
// a read value other than desired differs.
func TestComputeSettings(t *testing.T) {
	spec := &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingUnmanaged,
		TrialsOnBehalfOfOrganization: v1.SettingEnabled, OfficeStore: v1.SettingDisabled}
	reads := map[v1.SettingsResource]map[string]bool{
		v1.ResourceAuthorizationPolicy: {"allowedToSignUpEmailBasedSubscriptions": true, "allowEmailVerifiedUsersToJoinOrganization": true},
		v1.ResourceAppsAndServices:     {"isAppAndServicesTrialEnabled": true},
	}
	type row struct {
		Name              v1.TenantSettingName
		Desired, Observed v1.SettingValue
		Differs           bool
	}
	var got []row
	for _, s := range ComputeSettings(spec, reads) {
		got = append(got, row{s.Name, s.Desired, s.Observed, s.Differs()})
	}
	want := []row{
		{v1.SettingEmailBasedSubscriptions, "Disabled", "Enabled", true},
		{v1.SettingTrialsOnBehalfOfOrganization, "Enabled", "Enabled", false},
		{v1.SettingOfficeStore, "Disabled", "", false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ComputeSettings(nil, reads) != nil || SettingsManagedOn(nil, AuthorizationPolicy) {
		t.Error("no tenantSettings manages nothing")
	}
	if !SettingsManagedOn(spec, AppsAndServices) || SettingsManagedOn(&v1.TenantSettings{OfficeStore: v1.SettingDisabled}, AuthorizationPolicy) {
		t.Error("SettingsManagedOn")
	}
}
