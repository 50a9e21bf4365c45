package plan

import (
	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// Tenant-wide acquisition settings (spec.tenantSettings): which Graph
// resource and property holds each, what the spec asks of it and whether the
// tenant differs. The controller's settings step and the CLI's export and
// plan both decide with these, so they cannot disagree.

// SettingsResource is one Graph resource holding settings.
type SettingsResource struct {
	Name v1.SettingsResource
	// What names the resource in messages.
	What string
	// ReadPermission and WritePermission are the Graph application
	// permissions a 403 names.
	ReadPermission, WritePermission string
}

// The two settings resources, in the order they are read.
var (
	AuthorizationPolicy = &SettingsResource{Name: v1.ResourceAuthorizationPolicy, What: "GET/PATCH /v1.0/policies/authorizationPolicy",
		ReadPermission: "Policy.Read.All", WritePermission: "Policy.ReadWrite.Authorization"}
	AppsAndServices = &SettingsResource{Name: v1.ResourceAppsAndServices, What: "GET/PATCH /beta/admin/appsAndServices (beta)",
		ReadPermission: "OrgSettings-AppsAndServices.Read.All", WritePermission: "OrgSettings-AppsAndServices.ReadWrite.All"}
	SettingsResources = []*SettingsResource{AuthorizationPolicy, AppsAndServices}
)

// Setting is one tenant-wide setting: its name in the spec, where it lives,
// and how to read it from the spec.
type Setting struct {
	Name     v1.TenantSettingName
	Resource *SettingsResource
	// Field is the Graph property (graph.Field* spells the same names).
	Field string
	// Path is the user-facing name of what it opens.
	Path string
	spec func(*v1.TenantSettings) v1.SettingPolicy
}

// TenantSettings are the four settings, in the spec's order.
var TenantSettings = []Setting{
	{Name: v1.SettingEmailBasedSubscriptions, Resource: AuthorizationPolicy, Field: "allowedToSignUpEmailBasedSubscriptions", Path: "email-based subscriptions",
		spec: func(t *v1.TenantSettings) v1.SettingPolicy { return t.EmailBasedSubscriptions }},
	{Name: v1.SettingEmailVerifiedUsersJoin, Resource: AuthorizationPolicy, Field: "allowEmailVerifiedUsersToJoinOrganization", Path: "email-verified users joining",
		spec: func(t *v1.TenantSettings) v1.SettingPolicy { return t.EmailVerifiedUsersJoin }},
	{Name: v1.SettingTrialsOnBehalfOfOrganization, Resource: AppsAndServices, Field: "isAppAndServicesTrialEnabled", Path: "trials on behalf of the organisation",
		spec: func(t *v1.TenantSettings) v1.SettingPolicy { return t.TrialsOnBehalfOfOrganization }},
	{Name: v1.SettingOfficeStore, Resource: AppsAndServices, Field: "isOfficeStoreEnabled", Path: "the Office Store",
		spec: func(t *v1.TenantSettings) v1.SettingPolicy { return t.OfficeStore }},
}

// SettingNamed is the setting called name (the zero Setting if none is).
func SettingNamed(name v1.TenantSettingName) Setting {
	for _, s := range TenantSettings {
		if s.Name == name {
			return s
		}
	}
	return Setting{}
}

// Desired is the value spec asks of s, and whether s is managed (Enabled or
// Disabled; Unmanaged and unset are not).
func (s Setting) Desired(spec *v1.TenantSettings) (v1.SettingValue, bool) {
	if spec == nil {
		return "", false
	}
	switch p := s.spec(spec); p {
	case v1.SettingEnabled, v1.SettingDisabled:
		return v1.SettingValue(p), true
	}
	return "", false
}

// Observed is the value of s in read (the properties a GET of its resource
// returned, by Graph name); false when the answer lacked it (unknown).
func (s Setting) Observed(read map[string]bool) (v1.SettingValue, bool) {
	b, ok := read[s.Field]
	if !ok {
		return "", false
	}
	return SettingValueOf(b), true
}

// SettingValueOf is the value of a Graph boolean property.
func SettingValueOf(b bool) v1.SettingValue {
	if b {
		return v1.SettingValue(v1.SettingEnabled)
	}
	return v1.SettingValue(v1.SettingDisabled)
}

// GraphValue is the Graph boolean property of v.
func GraphValue(v v1.SettingValue) bool { return v == v1.SettingValue(v1.SettingEnabled) }

// SettingsManagedOn tells whether spec manages a setting held by res.
func SettingsManagedOn(spec *v1.TenantSettings, res *SettingsResource) bool {
	for _, s := range TenantSettings {
		if _, ok := s.Desired(spec); ok && s.Resource == res {
			return true
		}
	}
	return false
}

// SettingTarget is the desired value of one managed setting next to the
// tenant's.
type SettingTarget struct {
	Setting
	Desired v1.SettingValue
	// Observed is empty when the tenant's value is unknown (not read).
	Observed v1.SettingValue
}

// Differs tells whether the setting was read and is not at its desired
// value: exactly what Enforce mode writes.
func (t SettingTarget) Differs() bool { return t.Observed != "" && t.Observed != t.Desired }

// ComputeSettings lists the settings spec manages, in the spec's order, with
// the values reads holds (each resource's GET by name; a resource absent or
// a property missing leaves the setting's Observed empty).
func ComputeSettings(spec *v1.TenantSettings, reads map[v1.SettingsResource]map[string]bool) []SettingTarget {
	var out []SettingTarget
	for _, s := range TenantSettings {
		desired, ok := s.Desired(spec)
		if !ok {
			continue
		}
		t := SettingTarget{Setting: s, Desired: desired}
		t.Observed, _ = s.Observed(reads[s.Resource.Name])
		out = append(out, t)
	}
	return out
}
