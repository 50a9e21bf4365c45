package graph

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/policies"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// The tenant-wide acquisition settings (m365-api.md §5) live on two Graph
// resources: the authorization policy (v1.0, through the SDK's request
// builders) and the organisation's apps-and-services settings (beta only,
// sent through the same request adapter with the beta path, the one path
// that is beta: appsAndServicesPath).

// Names of the settings calls, used as m365.Error.Op.
const (
	OpGetAuthorizationPolicy    = "get authorization policy"
	OpUpdateAuthorizationPolicy = "update authorization policy"
	OpGetAppsAndServices        = "get apps and services (beta)"
	OpUpdateAppsAndServices     = "update apps and services (beta)"
)

// Graph property names of the four settings, as Settings keys them.
const (
	// On /v1.0/policies/authorizationPolicy.
	FieldAllowedToSignUpEmailBasedSubscriptions    = "allowedToSignUpEmailBasedSubscriptions"
	FieldAllowEmailVerifiedUsersToJoinOrganization = "allowEmailVerifiedUsersToJoinOrganization"
	// On /beta/admin/appsAndServices, inside "settings".
	FieldIsAppAndServicesTrialEnabled = "isAppAndServicesTrialEnabled"
	FieldIsOfficeStoreEnabled         = "isOfficeStoreEnabled"
)

// appsAndServicesPath is the beta resource's path from the endpoint origin.
const appsAndServicesPath = "/beta/admin/appsAndServices"

// authorizationPolicyFields is the $select of GET /policies/authorizationPolicy.
var authorizationPolicyFields = []string{FieldAllowedToSignUpEmailBasedSubscriptions, FieldAllowEmailVerifiedUsersToJoinOrganization}

// Settings are boolean properties of one settings resource by Graph name.
// A read holds the properties the answer carried (a missing or null one is
// absent: unknown); a write sends exactly the properties it holds.
type Settings map[string]bool

// GetAuthorizationPolicy reads the two acquisition settings of the
// tenant's authorization policy (GET /v1.0/policies/authorizationPolicy,
// $select of those two). Needs Policy.Read.All.
func (t Tenant) GetAuthorizationPolicy(ctx context.Context) (Settings, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, c.classify(ctx, OpGetAuthorizationPolicy, tenantID, err, nil)
	}
	rb := policies.NewAuthorizationPolicyRequestBuilderInternal(s.pathParams(), s.adapter)
	p, err := rb.Get(ctx, &policies.AuthorizationPolicyRequestBuilderGetRequestConfiguration{
		QueryParameters: &policies.AuthorizationPolicyRequestBuilderGetQueryParameters{Select: authorizationPolicyFields},
	})
	if err == nil && p == nil {
		err = errEmptyResponse
	}
	if err != nil {
		return nil, c.classify(ctx, OpGetAuthorizationPolicy, tenantID, err, s.rec)
	}
	out := Settings{}
	putBool(out, FieldAllowedToSignUpEmailBasedSubscriptions, p.GetAllowedToSignUpEmailBasedSubscriptions())
	putBool(out, FieldAllowEmailVerifiedUsersToJoinOrganization, p.GetAllowEmailVerifiedUsersToJoinOrganization())
	return out, nil
}

// UpdateAuthorizationPolicy sets the given acquisition settings of the
// authorization policy (PATCH /v1.0/policies/authorizationPolicy with only
// those properties; Microsoft answers 204). Needs
// Policy.ReadWrite.Authorization. Idempotent. The body is plain JSON of the
// properties: the SDK's model would add its @odata.type.
func (t Tenant) UpdateAuthorizationPolicy(ctx context.Context, set Settings) error {
	if err := onlyFields(OpUpdateAuthorizationPolicy, "an authorization policy", set,
		FieldAllowedToSignUpEmailBasedSubscriptions, FieldAllowEmailVerifiedUsersToJoinOrganization); err != nil {
		return err
	}
	body, err := json.Marshal(set)
	if err != nil {
		return err
	}
	_, err = t.send(ctx, OpUpdateAuthorizationPolicy, abs.PATCH, apiVersionPath+"/policies/authorizationPolicy", body)
	return err
}

// GetAppsAndServices reads the organisation's apps-and-services settings
// (BETA: GET /beta/admin/appsAndServices). Needs
// OrgSettings-AppsAndServices.Read.All. Graph documents the answer both as
// the entity itself and wrapped in "value"; both are read. A cloud without
// the resource answers 404 or 400 (see NotOffered).
func (t Tenant) GetAppsAndServices(ctx context.Context) (Settings, error) {
	raw, err := t.send(ctx, OpGetAppsAndServices, abs.GET, appsAndServicesPath, nil)
	if err != nil {
		return nil, err
	}
	type entity struct {
		Settings *struct {
			Trial *bool `json:"isAppAndServicesTrialEnabled"`
			Store *bool `json:"isOfficeStoreEnabled"`
		} `json:"settings"`
	}
	var answer struct {
		entity
		Value *entity `json:"value"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, &m365.Error{Op: OpGetAppsAndServices, Kind: m365.InvalidResponse, Reason: "not an adminAppsAndServices object", Err: err}
	}
	e := answer.entity
	if answer.Value != nil {
		e = *answer.Value
	}
	out := Settings{}
	if e.Settings != nil {
		putBool(out, FieldIsAppAndServicesTrialEnabled, e.Settings.Trial)
		putBool(out, FieldIsOfficeStoreEnabled, e.Settings.Store)
	}
	return out, nil
}

// UpdateAppsAndServices sets the given apps-and-services settings (BETA:
// PATCH /beta/admin/appsAndServices with {"settings":{...}} holding only
// those properties). Needs OrgSettings-AppsAndServices.ReadWrite.All.
// Idempotent.
func (t Tenant) UpdateAppsAndServices(ctx context.Context, set Settings) error {
	if err := onlyFields(OpUpdateAppsAndServices, "an apps and services", set,
		FieldIsAppAndServicesTrialEnabled, FieldIsOfficeStoreEnabled); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]Settings{"settings": set})
	if err != nil {
		return err
	}
	_, err = t.send(ctx, OpUpdateAppsAndServices, abs.PATCH, appsAndServicesPath, body)
	return err
}

// send sends method with body (JSON, or none) to path on the endpoint's
// origin (path starts with the API version: /v1.0 or, for the one beta
// resource, /beta) through the Graph SDK's request adapter, on the same
// pipeline as every other call (gate, no redirects, capped bodies, token only
// for the Graph host), and returns the answer's body (nil for 204). Its
// errors are *m365.Error like every call's.
func (t Tenant) send(ctx context.Context, op string, method abs.HttpMethod, path string, body []byte) ([]byte, error) {
	c, tenantID := t.c, t.tenantID
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.begin(tenantID, t.cred)
	if err != nil {
		return nil, c.classify(ctx, op, tenantID, err, nil)
	}
	s.adapter.SetBaseUrl(strings.TrimSuffix(c.baseURL, apiVersionPath))
	ri := abs.NewRequestInformationWithMethodAndUrlTemplateAndPathParameters(method, "{+baseurl}"+path, map[string]string{})
	ri.Headers.TryAdd("Accept", "application/json")
	if body != nil {
		ri.SetStreamContentAndContentType(body, "application/json")
	}
	var raw any
	if method == abs.GET {
		raw, err = s.adapter.SendPrimitive(ctx, ri, "[]byte", nil)
		if err == nil && raw == nil {
			err = errEmptyResponse
		}
	} else {
		err = s.adapter.SendNoContent(ctx, ri, nil)
	}
	if err != nil {
		return nil, c.classify(ctx, op, tenantID, err, s.rec)
	}
	b, _ := raw.([]byte)
	return b, nil
}

// NotOffered tells whether err says the tenant's cloud does not offer the
// beta apps-and-services resource: Graph answers 404 (no such resource) or
// 400 ("Resource not found for the segment 'appsAndServices'") where the
// beta API is not deployed (national clouds).
func NotOffered(err error) bool {
	e, ok := m365.AsError(err)
	return ok && (e.Op == OpGetAppsAndServices || e.Op == OpUpdateAppsAndServices) &&
		(e.Kind == m365.NotFound || e.StatusCode == 400 || e.StatusCode == 404)
}

// onlyFields refuses a write holding a property other than fields: the
// resource (what) has no such setting.
func onlyFields(op, what string, set Settings, fields ...string) error {
	for name := range set {
		if !slices.Contains(fields, name) {
			return &m365.Error{Op: op, Kind: m365.BadRequest, Reason: "not " + what + " setting: " + name}
		}
	}
	return nil
}

func putBool(out Settings, name string, v *bool) {
	if v != nil {
		out[name] = *v
	}
}
