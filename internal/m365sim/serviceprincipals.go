package m365sim

import (
	"fmt"
	"net/http"
	"slices"
)

// Service principals of the resources. A token for a resource is issued only
// while the tenant holds that resource's service principal. Every tenant has
// Microsoft Graph's; the licensing API's ("M365 License Manager") is missing
// in some tenants, and Entra then refuses every token request for it:
//
//	400 {"error":"invalid_resource","error_codes":[500011],"error_description":"AADSTS500011: The resource principal named aeb86249-… was not found in the tenant named Contoso. …"}
//
// An admin fixes it by creating the service principal (New-MgServicePrincipal
// -AppId aeb86249-8ea3-49e2-900b-54cc8e308f85).

// ServicePrincipal is one resource's service principal in a tenant.
type ServicePrincipal struct {
	AppID   string `json:"appId"`
	Present bool   `json:"present"`
}

// resourceApps are the resources the simulator serves, by app ID.
var resourceApps = []string{ResourceLicensing, ResourceGraph}

// missingPrincipals is the set of resource app IDs a tenant lacks.
type missingPrincipals map[string]bool

// newMissingPrincipals checks the app IDs of TenantConfig.WithoutServicePrincipals.
func newMissingPrincipals(appIDs []string) (missingPrincipals, error) {
	m := missingPrincipals{}
	for _, id := range appIDs {
		if !slices.Contains(resourceApps, lower(id)) {
			return nil, fmt.Errorf("%w: service principal %q (want %s or %s)", ErrInvalid, id, ResourceLicensing, ResourceGraph)
		}
		m[lower(id)] = true
	}
	return m, nil
}

// principalMissing answers Entra's AADSTS500011 when the tenant lacks the
// service principal of resource. t must be locked.
func (t *tenant) principalMissing(resource string) *entraError {
	if !t.noPrincipal[resource] {
		return nil
	}
	return entraErr(http.StatusBadRequest, "invalid_resource", 500011,
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
		resource, t.name)
}

// ServicePrincipals lists which resource service principals the tenant holds.
func (s *Server) ServicePrincipals(tenantID string) ([]ServicePrincipal, error) {
	var out []ServicePrincipal
	err := s.withTenant(tenantID, func(t *tenant) error {
		for _, id := range resourceApps {
			out = append(out, ServicePrincipal{AppID: id, Present: !t.noPrincipal[id]})
		}
		return nil
	})
	return out, err
}

// SetServicePrincipal adds (present) or deletes the service principal of the
// resource appID in the tenant, as an admin would with New- or
// Remove-MgServicePrincipal.
func (s *Server) SetServicePrincipal(tenantID, appID string, present bool) (ServicePrincipal, error) {
	if _, err := newMissingPrincipals([]string{appID}); err != nil {
		return ServicePrincipal{}, err
	}
	err := s.withTenant(tenantID, func(t *tenant) error {
		if present {
			delete(t.noPrincipal, lower(appID))
		} else {
			t.noPrincipal[lower(appID)] = true
		}
		return nil
	})
	return ServicePrincipal{AppID: lower(appID), Present: present}, err
}

// servicePrincipalRoutes registers
//
//	GET    /_sim/tenants/{tid}/servicePrincipals          [{appId, present}]
//	PUT    /_sim/tenants/{tid}/servicePrincipals/{appId}  create it
//	DELETE /_sim/tenants/{tid}/servicePrincipals/{appId}  delete it (tokens for it fail with AADSTS500011)
func (s *Server) servicePrincipalRoutes(mux *http.ServeMux, t string) {
	mux.HandleFunc("GET "+t+"/servicePrincipals", tenantGet(s.ServicePrincipals))
	for method, present := range map[string]bool{"PUT": true, "DELETE": false} {
		mux.HandleFunc(method+" "+t+"/servicePrincipals/{app}", tenantItem("app", func(tid, app string) (ServicePrincipal, error) {
			return s.SetServicePrincipal(tid, app, present)
		}))
	}
}
