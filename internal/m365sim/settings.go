package m365sim

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Tenant-wide acquisition settings (docs/microsoft-api.md, "Served by the simulator"): the authorization policy
// (Graph v1.0) and the organisation's apps-and-services settings (Graph
// beta), per tenant, with their documented JSON shapes and PATCH semantics.

// Graph application permissions (and delegated scopes) of the settings.
const (
	PermPolicyReadAll                = "Policy.Read.All"
	PermPolicyReadWriteAuthorization = "Policy.ReadWrite.Authorization"
	PermAppsAndServicesRead          = "OrgSettings-AppsAndServices.Read.All"
	PermAppsAndServicesReadWrite     = "OrgSettings-AppsAndServices.ReadWrite.All"
)

// Paths of the settings resources on the Graph listener.
const (
	pathAuthorizationPolicy = "/v1.0/policies/authorizationPolicy"
	pathAppsAndServices     = "/beta/admin/appsAndServices"
	graphBetaContextBase    = "https://graph.microsoft.com/beta/$metadata#"
	// maxSettingsWrites bounds the per-tenant log of settings PATCHes.
	maxSettingsWrites = 1000
)

// Settings resource names, as SettingsWrite.Resource and request-log routes name them.
const (
	SettingsAuthorizationPolicy = "authorizationPolicy"
	SettingsAppsAndServices     = "appsAndServices"
)

// AppsAndServicesMode says whether a tenant's cloud offers the beta
// appsAndServices resource.
type AppsAndServicesMode string

// AppsAndServicesMode values.
const (
	// AppsAndServicesAvailable serves the resource (the default).
	AppsAndServicesAvailable AppsAndServicesMode = "Available"
	// AppsAndServicesNotFound answers 404, as a cloud without the beta API does.
	AppsAndServicesNotFound AppsAndServicesMode = "NotFound"
	// AppsAndServicesBadRequest answers 400 "Resource not found for the
	// segment 'appsAndServices'", as Graph does for an unknown segment.
	AppsAndServicesBadRequest AppsAndServicesMode = "BadRequest"
	// AppsAndServicesValueWrapped serves the GET in the envelope of the
	// docs' example ({"value":{...}}) so a client can be tested against it.
	AppsAndServicesValueWrapped AppsAndServicesMode = "ValueWrapped"
)

func (m AppsAndServicesMode) valid() bool {
	return slices.Contains([]AppsAndServicesMode{AppsAndServicesAvailable, AppsAndServicesNotFound, AppsAndServicesBadRequest, AppsAndServicesValueWrapped}, m)
}

// AuthorizationPolicy is Graph v1.0's authorizationPolicy singleton (id
// "authorizationPolicy"), with the defaults of a new tenant.
type AuthorizationPolicy struct {
	DisplayName                               string                     `json:"displayName"`
	Description                               string                     `json:"description"`
	AllowInvitesFrom                          string                     `json:"allowInvitesFrom"`
	AllowedToSignUpEmailBasedSubscriptions    bool                       `json:"allowedToSignUpEmailBasedSubscriptions"`
	AllowedToUseSSPR                          bool                       `json:"allowedToUseSSPR"`
	AllowEmailVerifiedUsersToJoinOrganization bool                       `json:"allowEmailVerifiedUsersToJoinOrganization"`
	AllowUserConsentForRiskyApps              bool                       `json:"allowUserConsentForRiskyApps"`
	BlockMsolPowerShell                       *bool                      `json:"blockMsolPowerShell"`
	GuestUserRoleID                           string                     `json:"guestUserRoleId"`
	DefaultUserRolePermissions                DefaultUserRolePermissions `json:"defaultUserRolePermissions"`
}

// DefaultUserRolePermissions is the authorization policy's defaultUserRolePermissions.
type DefaultUserRolePermissions struct {
	AllowedToCreateApps                      bool     `json:"allowedToCreateApps"`
	AllowedToCreateSecurityGroups            bool     `json:"allowedToCreateSecurityGroups"`
	AllowedToCreateTenants                   bool     `json:"allowedToCreateTenants"`
	AllowedToReadBitlockerKeysForOwnedDevice bool     `json:"allowedToReadBitlockerKeysForOwnedDevice"`
	AllowedToReadOtherUsers                  bool     `json:"allowedToReadOtherUsers"`
	PermissionGrantPoliciesAssigned          []string `json:"permissionGrantPoliciesAssigned"`
}

// Guest user role template IDs accepted by guestUserRoleId.
var guestUserRoleIDs = []string{
	"a0b1b346-4d3e-4e8b-98f8-753987be4970", // User
	"10dae51f-b6af-4016-8d66-8c2a99b929b3", // Guest User (default)
	"2af84b1e-32c8-42b7-82bc-daa82404023b", // Restricted Guest User
}

// DefaultAuthorizationPolicy is a new tenant's authorization policy.
func DefaultAuthorizationPolicy() AuthorizationPolicy {
	return AuthorizationPolicy{
		DisplayName: "Authorization Policy", Description: "Used to manage authorization related settings across the company.",
		AllowInvitesFrom: "everyone", AllowedToSignUpEmailBasedSubscriptions: true, AllowedToUseSSPR: true,
		AllowEmailVerifiedUsersToJoinOrganization: true, GuestUserRoleID: guestUserRoleIDs[1],
		DefaultUserRolePermissions: DefaultUserRolePermissions{AllowedToCreateApps: true, AllowedToCreateSecurityGroups: true,
			AllowedToCreateTenants: true, AllowedToReadBitlockerKeysForOwnedDevice: true, AllowedToReadOtherUsers: true,
			PermissionGrantPoliciesAssigned: []string{"ManagePermissionGrantsForSelf.microsoft-user-default-legacy"}},
	}
}

// TenantSettings are the four acquisition settings and the appsAndServices
// availability, as the admin API shows them.
type TenantSettings struct {
	AllowedToSignUpEmailBasedSubscriptions    bool                `json:"allowedToSignUpEmailBasedSubscriptions"`
	AllowEmailVerifiedUsersToJoinOrganization bool                `json:"allowEmailVerifiedUsersToJoinOrganization"`
	IsAppAndServicesTrialEnabled              bool                `json:"isAppAndServicesTrialEnabled"`
	IsOfficeStoreEnabled                      bool                `json:"isOfficeStoreEnabled"`
	AppsAndServicesMode                       AppsAndServicesMode `json:"appsAndServicesMode"`
}

// TenantSettingsUpdate changes the settings that are set (nil = unchanged),
// as an admin in the admin center would.
type TenantSettingsUpdate struct {
	AllowedToSignUpEmailBasedSubscriptions    *bool                `json:"allowedToSignUpEmailBasedSubscriptions,omitempty"`
	AllowEmailVerifiedUsersToJoinOrganization *bool                `json:"allowEmailVerifiedUsersToJoinOrganization,omitempty"`
	IsAppAndServicesTrialEnabled              *bool                `json:"isAppAndServicesTrialEnabled,omitempty"`
	IsOfficeStoreEnabled                      *bool                `json:"isOfficeStoreEnabled,omitempty"`
	AppsAndServicesMode                       *AppsAndServicesMode `json:"appsAndServicesMode,omitempty"`
}

// SettingsWrite is one PATCH a settings resource accepted over Graph.
type SettingsWrite struct {
	Time time.Time `json:"time"`
	// Resource is SettingsAuthorizationPolicy or SettingsAppsAndServices.
	Resource string `json:"resource"`
	// Fields are the properties the body set, nested ones as
	// "settings.isOfficeStoreEnabled" (annotations such as @odata.type excluded).
	Fields []string `json:"fields"`
	Caller string   `json:"caller,omitempty"`
}

// tenantSettings is a tenant's settings state.
type tenantSettings struct {
	authz         AuthorizationPolicy
	appsID        string
	trials, store bool
	mode          AppsAndServicesMode
	writes        []SettingsWrite
}

func newTenantSettings(tenantID string) tenantSettings {
	return tenantSettings{authz: DefaultAuthorizationPolicy(), trials: true, store: true, mode: AppsAndServicesAvailable,
		appsID: uuid.NewSHA1(uuid.NameSpaceOID, []byte("m365sim/appsAndServices/"+tenantID)).String()}
}

func (st *tenantSettings) view() TenantSettings {
	return TenantSettings{AllowedToSignUpEmailBasedSubscriptions: st.authz.AllowedToSignUpEmailBasedSubscriptions,
		AllowEmailVerifiedUsersToJoinOrganization: st.authz.AllowEmailVerifiedUsersToJoinOrganization,
		IsAppAndServicesTrialEnabled:              st.trials, IsOfficeStoreEnabled: st.store, AppsAndServicesMode: st.mode}
}

func (u *TenantSettingsUpdate) validate() error {
	if u != nil && u.AppsAndServicesMode != nil && !u.AppsAndServicesMode.valid() {
		return fmt.Errorf("%w: appsAndServicesMode %q (want Available, NotFound, BadRequest or ValueWrapped)", ErrInvalid, *u.AppsAndServicesMode)
	}
	return nil
}

func (st *tenantSettings) apply(u *TenantSettingsUpdate) {
	if u == nil {
		return
	}
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&st.authz.AllowedToSignUpEmailBasedSubscriptions, u.AllowedToSignUpEmailBasedSubscriptions)
	set(&st.authz.AllowEmailVerifiedUsersToJoinOrganization, u.AllowEmailVerifiedUsersToJoinOrganization)
	set(&st.trials, u.IsAppAndServicesTrialEnabled)
	set(&st.store, u.IsOfficeStoreEnabled)
	if u.AppsAndServicesMode != nil {
		st.mode = *u.AppsAndServicesMode
	}
}

// Settings returns a tenant's acquisition settings.
func (s *Server) Settings(tenantID string) (TenantSettings, error) {
	var out TenantSettings
	err := s.withTenant(tenantID, func(t *tenant) error { out = t.settings.view(); return nil })
	return out, err
}

// UpdateSettings flips settings by hand (not a Graph write: not in
// SettingsWrites) and returns the result.
func (s *Server) UpdateSettings(tenantID string, u TenantSettingsUpdate) (TenantSettings, error) {
	if err := u.validate(); err != nil {
		return TenantSettings{}, err
	}
	var out TenantSettings
	err := s.withTenant(tenantID, func(t *tenant) error {
		t.settings.apply(&u)
		out = t.settings.view()
		return nil
	})
	return out, err
}

// AuthorizationPolicy returns a tenant's whole authorization policy.
func (s *Server) AuthorizationPolicy(tenantID string) (AuthorizationPolicy, error) {
	var out AuthorizationPolicy
	err := s.withTenant(tenantID, func(t *tenant) error {
		out = t.settings.authz
		out.DefaultUserRolePermissions.PermissionGrantPoliciesAssigned = slices.Clone(out.DefaultUserRolePermissions.PermissionGrantPoliciesAssigned)
		return nil
	})
	return out, err
}

// SettingsWrites returns the settings PATCHes a tenant accepted, oldest first.
func (s *Server) SettingsWrites(tenantID string) ([]SettingsWrite, error) {
	out := []SettingsWrite{}
	err := s.withTenant(tenantID, func(t *tenant) error { out = append(out, t.settings.writes...); return nil })
	return out, err
}

// graphSettingsRoutes registers the settings resources on the Graph mux.
func (s *Server) graphSettingsRoutes(mux *http.ServeMux) {
	policyRead := delegatedOr([]string{PermPolicyReadAll, PermPolicyReadWriteAuthorization}, RoleGlobalAdmin, RoleGlobalReader, RolePrivilegedRoleAdmin)
	policyWrite := delegatedOr([]string{PermPolicyReadWriteAuthorization}, RoleGlobalAdmin, RolePrivilegedRoleAdmin)
	appsRead := delegatedOr([]string{PermAppsAndServicesRead, PermAppsAndServicesReadWrite}, RoleGlobalAdmin, RoleGlobalReader)
	appsWrite := delegatedOr([]string{PermAppsAndServicesReadWrite}, RoleGlobalAdmin)
	mux.HandleFunc("GET "+pathAuthorizationPolicy, s.graphAllowed(policyRead, s.handleGetAuthorizationPolicy))
	mux.HandleFunc("PATCH "+pathAuthorizationPolicy, s.graphAllowed(policyWrite, s.handlePatchAuthorizationPolicy))
	mux.HandleFunc("GET "+pathAppsAndServices, s.appsAndServicesOffered(s.graphAllowed(appsRead, s.handleGetAppsAndServices)))
	mux.HandleFunc("PATCH "+pathAppsAndServices, s.appsAndServicesOffered(s.graphAllowed(appsWrite, s.handlePatchAppsAndServices)))
}

// delegatedOr allows an app token holding one of perms, or a delegated token
// holding one of perms as a scope whose user holds one of roles.
func delegatedOr(perms []string, roles ...string) func(*accessClaims, *tenant) bool {
	return func(c *accessClaims, _ *tenant) bool {
		if c.delegated() {
			return c.hasScope(perms...) && c.hasDirectoryRole(roles...)
		}
		return c.hasRole(perms...)
	}
}

// appsAndServicesOffered answers as a cloud without the beta resource does
// when the tenant's mode says so; routing comes before authorization, as in
// Graph.
func (s *Server) appsAndServicesOffered(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t := callOf(r).tenant
		t.mu.Lock()
		mode := t.settings.mode
		t.mu.Unlock()
		switch mode {
		case AppsAndServicesNotFound:
			styleOf(EndpointGraph).write(w, http.StatusNotFound, "NotFound", "No HTTP resource was found that matches the request URI 'https://graph.microsoft.com"+pathAppsAndServices+"'.")
		case AppsAndServicesBadRequest:
			styleOf(EndpointGraph).write(w, http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'appsAndServices'.")
		default:
			next(w, r)
		}
	}
}

func (s *Server) handleGetAuthorizationPolicy(w http.ResponseWriter, r *http.Request, t *tenant) {
	t.mu.Lock()
	b, _ := json.Marshal(t.settings.authz)
	t.mu.Unlock()
	var item map[string]any
	_ = json.Unmarshal(b, &item)
	item["id"] = "authorizationPolicy"
	writeEntity(w, r, "policies/authorizationPolicy/$entity", item)
}

func (s *Server) handleGetAppsAndServices(w http.ResponseWriter, _ *http.Request, t *tenant) {
	t.mu.Lock()
	st := t.settings
	t.mu.Unlock()
	settings := map[string]any{"isAppAndServicesTrialEnabled": st.trials, "isOfficeStoreEnabled": st.store}
	if st.mode == AppsAndServicesValueWrapped {
		settings["@odata.type"] = "microsoft.graph.appsAndServicesSettings"
		writeJSON(w, http.StatusOK, map[string]any{"value": map[string]any{
			"@odata.type": "#microsoft.graph.adminAppsAndServices", "id": st.appsID, "settings": settings}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": graphBetaContextBase + "admin/appsAndServices/$entity",
		"id": st.appsID, "settings": settings})
}

func (s *Server) handlePatchAuthorizationPolicy(w http.ResponseWriter, r *http.Request, t *tenant) {
	s.patchSettings(w, r, t, SettingsAuthorizationPolicy, authorizationPolicySchema, func(st *tenantSettings, body []byte) error {
		next := st.authz
		next.DefaultUserRolePermissions.PermissionGrantPoliciesAssigned = slices.Clone(next.DefaultUserRolePermissions.PermissionGrantPoliciesAssigned)
		if err := json.Unmarshal(body, &next); err != nil {
			return err
		}
		st.authz = next
		return nil
	})
}

func (s *Server) handlePatchAppsAndServices(w http.ResponseWriter, r *http.Request, t *tenant) {
	s.patchSettings(w, r, t, SettingsAppsAndServices, appsAndServicesSchema, func(st *tenantSettings, body []byte) error {
		var patch struct {
			Settings struct {
				Trials *bool `json:"isAppAndServicesTrialEnabled"`
				Store  *bool `json:"isOfficeStoreEnabled"`
			} `json:"settings"`
		}
		if err := json.Unmarshal(body, &patch); err != nil {
			return err
		}
		st.apply(&TenantSettingsUpdate{IsAppAndServicesTrialEnabled: patch.Settings.Trials, IsOfficeStoreEnabled: patch.Settings.Store})
		return nil
	})
}

// patchSettings validates a PATCH body against the resource's schema (400
// in Graph's words otherwise), applies it, records the write and answers 204.
func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request, t *tenant, resource string, schema propertySchema,
	apply func(*tenantSettings, []byte) error) {
	body, status, err := readGraphBody(r)
	if err != nil {
		styleOf(EndpointGraph).write(w, status, http.StatusText(status), err.Error())
		return
	}
	fields, msg := schema.validate(body)
	if msg != "" {
		styleOf(EndpointGraph).write(w, http.StatusBadRequest, "BadRequest", msg)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := apply(&t.settings, body); err != nil {
		styleOf(EndpointGraph).write(w, http.StatusBadRequest, "BadRequest", "Invalid request body: "+clip(err.Error()))
		return
	}
	if len(t.settings.writes) >= maxSettingsWrites {
		t.settings.writes = slices.Delete(t.settings.writes, 0, maxSettingsWrites/10)
	}
	t.settings.writes = append(t.settings.writes, SettingsWrite{Time: s.now(), Resource: resource, Fields: fields, Caller: callOf(r).caller})
	w.WriteHeader(http.StatusNoContent)
}

// readGraphBody reads a request body as Graph does: plain, or gzip
// (Content-Encoding: gzip, which the Graph SDKs' compression handler sends);
// any other encoding is 415, as Graph answers (the SDKs then resend it
// uncompressed).
func readGraphBody(r *http.Request) ([]byte, int, error) {
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, http.StatusBadRequest, errors.New("Unable to read the request body: invalid gzip stream.")
		}
		defer zr.Close()
		body = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding '%s' is not supported.", clip(enc))
	}
	b, err := readLimited(body)
	if err != nil {
		return nil, http.StatusBadRequest, errors.New("Unable to read the request body.")
	}
	return b, 0, nil
}

// Kinds of PATCHable properties.
const (
	kindBool = iota
	kindString
	kindEnum
	kindStrings
	kindObject
)

// property is one property a PATCH body may set.
type property struct {
	kind     int
	nullable bool
	values   []string       // kindEnum
	object   propertySchema // kindObject
}

// propertySchema describes a PATCHable type: its OData type name and properties.
type propertySchema struct {
	typeName   string
	properties map[string]property
	required   []string
}

var authorizationPolicySchema = propertySchema{typeName: "microsoft.graph.authorizationPolicy", properties: map[string]property{
	"displayName":                               {kind: kindString},
	"description":                               {kind: kindString},
	"allowInvitesFrom":                          {kind: kindEnum, values: []string{"none", "adminsAndGuestInviters", "adminsGuestInvitersAndAllMembers", "everyone"}},
	"allowedToSignUpEmailBasedSubscriptions":    {kind: kindBool},
	"allowedToUseSSPR":                          {kind: kindBool},
	"allowEmailVerifiedUsersToJoinOrganization": {kind: kindBool},
	"allowUserConsentForRiskyApps":              {kind: kindBool},
	"blockMsolPowerShell":                       {kind: kindBool, nullable: true},
	"guestUserRoleId":                           {kind: kindEnum, values: guestUserRoleIDs},
	"defaultUserRolePermissions": {kind: kindObject, object: propertySchema{typeName: "microsoft.graph.defaultUserRolePermissions", properties: map[string]property{
		"allowedToCreateApps":                      {kind: kindBool},
		"allowedToCreateSecurityGroups":            {kind: kindBool},
		"allowedToCreateTenants":                   {kind: kindBool},
		"allowedToReadBitlockerKeysForOwnedDevice": {kind: kindBool},
		"allowedToReadOtherUsers":                  {kind: kindBool},
		"permissionGrantPoliciesAssigned":          {kind: kindStrings},
	}}},
}}

var appsAndServicesSchema = propertySchema{typeName: "microsoft.graph.adminAppsAndServices", required: []string{"settings"}, properties: map[string]property{
	"settings": {kind: kindObject, object: propertySchema{typeName: "microsoft.graph.appsAndServicesSettings", properties: map[string]property{
		"isAppAndServicesTrialEnabled": {kind: kindBool},
		"isOfficeStoreEnabled":         {kind: kindBool},
	}}},
}}

// validate checks a PATCH body and returns the properties it sets, or the
// message of Graph's 400 answer.
func (ps propertySchema) validate(body []byte) ([]string, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "Empty Payload. JSON content expected."
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, "Invalid JSON. The request body must be a JSON object."
	}
	for _, req := range ps.required {
		if _, ok := obj[req]; !ok {
			return nil, fmt.Sprintf("The property '%s' is required on type '%s'.", req, ps.typeName)
		}
	}
	return ps.check(obj, "")
}

func (ps propertySchema) check(obj map[string]json.RawMessage, prefix string) ([]string, string) {
	var fields []string
	for name, raw := range obj {
		switch {
		case name == "@odata.type":
			var v string
			if json.Unmarshal(raw, &v) != nil || strings.TrimPrefix(v, "#") != ps.typeName {
				return nil, fmt.Sprintf("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", clip(string(raw)))
			}
			continue
		case name == "id" && prefix == "":
			return nil, fmt.Sprintf("The property 'id' is read-only on type '%s' and cannot be set.", ps.typeName)
		}
		p, ok := ps.properties[name]
		if !ok {
			return nil, fmt.Sprintf("The property '%s' does not exist on type '%s'. Make sure to only use property names that are defined by the type or mark the type as open type.", clip(name), ps.typeName)
		}
		nested, msg := p.check(name, raw, prefix)
		if msg != "" {
			return nil, msg
		}
		fields = append(fields, nested...)
	}
	slices.Sort(fields)
	return fields, ""
}

// check validates one property's value and returns the field names it sets.
func (p property) check(name string, raw json.RawMessage, prefix string) ([]string, string) {
	edm := map[int]string{kindBool: "Edm.Boolean", kindString: "Edm.String", kindEnum: "Edm.String", kindStrings: "Collection(Edm.String)", kindObject: p.object.typeName}[p.kind]
	if string(bytes.TrimSpace(raw)) == "null" {
		if p.nullable {
			return []string{prefix + name}, ""
		}
		return nil, fmt.Sprintf("A null value was found for the property named '%s', which has the expected type '%s[Nullable=False]'. The expected type '%s[Nullable=False]' does not allow null values.", name, edm, edm)
	}
	var ok bool
	switch p.kind {
	case kindBool:
		var v bool
		ok = json.Unmarshal(raw, &v) == nil
	case kindString:
		var v string
		ok = json.Unmarshal(raw, &v) == nil
	case kindEnum:
		var v string
		if ok = json.Unmarshal(raw, &v) == nil; ok && !slices.Contains(p.values, v) {
			return nil, fmt.Sprintf("Requested value '%s' was not found for the property '%s'.", clip(v), name)
		}
	case kindStrings:
		var v []string
		ok = json.Unmarshal(raw, &v) == nil
	case kindObject:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil && obj != nil {
			return p.object.check(obj, prefix+name+".")
		}
	}
	if !ok {
		return nil, fmt.Sprintf("Cannot convert the literal '%s' to the expected type '%s'.", clip(string(raw)), edm)
	}
	return []string{prefix + name}, ""
}
