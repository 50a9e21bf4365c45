package m365sim

import (
	"encoding/json"
	"fmt"
	"os"
)

// FleetFile is the JSON of m365sim's --tenants-file.
//
//	{"tenants": [{"id": "<guid>", "name": "Contoso", "sampleDirectory": true,
//	  "products": [{"productId": "CFQ7TTC0MM8R", "productName": "Microsoft 365 Copilot", "policyValue": "Enabled"}],
//	  "apps": [{"clientId": "<guid>", "secret": "...", "certificatePEM": "...", "permissions": ["Policy.ReadWrite.AllowSelfServicePurchase"]}],
//	  "delegated": [{"clientId": "<guid>", "roles": ["Billing Administrator"]}],
//	  "settings": {"isAppAndServicesTrialEnabled": true, "appsAndServicesMode": "Available"},
//	  "customers": [{"tenantId": "<guid>", "displayName": "Fabrikam"}]}]}
//
// Customers may name tenants declared later in the same file.
type FleetFile struct {
	Tenants []FleetTenant `json:"tenants"`
}

// FleetTenant is one tenant of a FleetFile.
type FleetTenant struct {
	ID              string         `json:"id,omitempty"`
	Name            string         `json:"name,omitempty"`
	SampleDirectory bool           `json:"sampleDirectory,omitempty"`
	Products        []Product      `json:"products,omitempty"`
	Apps            []AppRequest   `json:"apps,omitempty"`
	Delegated       []ReadyDelegee `json:"delegated,omitempty"`
	// Settings overrides the acquisition settings.
	Settings *TenantSettingsUpdate `json:"settings,omitempty"`
	// Customers makes the tenant a GDAP partner of these customers.
	Customers []CustomerRequest `json:"customers,omitempty"`
	// WithoutServicePrincipals: resource app IDs the tenant lacks (AADSTS500011).
	WithoutServicePrincipals []string `json:"withoutServicePrincipals,omitempty"`
}

// ReadyInfo is what m365sim writes to --ready-file once it listens.
type ReadyInfo struct {
	AuthorityHost string        `json:"authorityHost"`
	Licensing     string        `json:"licensing"`
	Graph         string        `json:"graph"`
	AdminURL      string        `json:"adminURL"`
	LeakSink      string        `json:"leakSink"`
	CAFile        string        `json:"caFile,omitempty"`
	Tenants       []ReadyTenant `json:"tenants"`
}

// ReadyTenant lists a tenant's credentials.
type ReadyTenant struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Domain    string         `json:"domain"`
	Apps      []ReadyApp     `json:"apps"`
	Delegated []ReadyDelegee `json:"delegated,omitempty"`
}

// ReadyApp is an app registration with its secret.
type ReadyApp struct {
	ClientID    string   `json:"clientId"`
	Secret      string   `json:"secret,omitempty"`
	Permissions []string `json:"permissions"`
}

// ReadyDelegee is a delegated admin login; RefreshToken is filled in by
// Provision.
type ReadyDelegee struct {
	ClientID     string   `json:"clientId"`
	Roles        []string `json:"roles"`
	RefreshToken string   `json:"refreshToken,omitempty"`
}

// LoadFleetFile reads a FleetFile.
func LoadFleetFile(path string) (FleetFile, error) {
	var f FleetFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("reading tenants file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("parsing tenants file %s: %w", path, err)
	}
	return f, nil
}

// Provision adds every tenant of f with its apps and delegated logins.
func (s *Server) Provision(f FleetFile) ([]ReadyTenant, error) {
	out := make([]ReadyTenant, 0, len(f.Tenants))
	for i, ft := range f.Tenants {
		info, err := s.AddTenant(TenantConfig{ID: ft.ID, Name: ft.Name, Products: ft.Products, WithSampleDirectory: ft.SampleDirectory, Settings: ft.Settings, WithoutServicePrincipals: ft.WithoutServicePrincipals})
		if err != nil {
			return nil, fmt.Errorf("tenant %d: %w", i, err)
		}
		rt := ReadyTenant{ID: info.ID, Name: info.Name, Domain: info.Domain, Apps: []ReadyApp{}}
		for _, a := range ft.Apps {
			if err := s.RegisterApp(info.ID, a.App()); err != nil {
				return nil, fmt.Errorf("tenant %s app %s: %w", info.ID, a.ClientID, err)
			}
			rt.Apps = append(rt.Apps, ReadyApp{ClientID: a.ClientID, Secret: a.Secret, Permissions: a.Permissions})
		}
		for _, d := range ft.Delegated {
			tok, err := s.RegisterDelegatedUser(info.ID, d.ClientID, d.Roles)
			if err != nil {
				return nil, fmt.Errorf("tenant %s delegated %s: %w", info.ID, d.ClientID, err)
			}
			d.RefreshToken = tok
			rt.Delegated = append(rt.Delegated, d)
		}
		out = append(out, rt)
	}
	for i, ft := range f.Tenants { // after every tenant exists
		for _, c := range ft.Customers {
			if _, err := s.AddCustomerRelationship(out[i].ID, c); err != nil {
				return nil, fmt.Errorf("tenant %s customer %s: %w", out[i].ID, c.TenantID, err)
			}
		}
	}
	return out, nil
}

// GenerateFleet adds n tenants named "Tenant 0001"... with deterministic IDs
// (from Options.Seed), the sample directory, and one app each with every
// permission and a generated secret.
func (s *Server) GenerateFleet(n int) ([]ReadyTenant, error) {
	f := FleetFile{}
	for i := 1; i <= n; i++ {
		f.Tenants = append(f.Tenants, FleetTenant{
			ID: s.newGUID(), Name: fmt.Sprintf("Tenant %04d", i), SampleDirectory: true,
			Apps: []AppRequest{{ClientID: s.newGUID(), Secret: "sim~" + s.newGUID(), Permissions: AllPermissions}},
		})
	}
	return s.Provision(f)
}

// ReadyInfo describes the running simulator and the given tenants.
func (s *Server) ReadyInfo(tenants []ReadyTenant) ReadyInfo {
	e := s.Endpoints()
	return ReadyInfo{AuthorityHost: e.AuthorityHost, Licensing: e.Licensing, Graph: e.Graph, AdminURL: s.AdminURL(), LeakSink: s.LeakSinkURL(), CAFile: s.opts.CAFile, Tenants: tenants}
}
