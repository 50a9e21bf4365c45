package m365sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// Application permissions the simulator knows.
const (
	PermPolicyRead       = "Policy.Read.AllowSelfServicePurchase"
	PermPolicyReadWrite  = "Policy.ReadWrite.AllowSelfServicePurchase"
	PermOrganizationRead = "Organization.Read.All"
	PermUserRead         = "User.Read.All"
)

// AllPermissions are every application permission the controller may need
// (the Graph ones of settings.go and gdap.go included).
var AllPermissions = []string{PermPolicyRead, PermPolicyReadWrite, PermOrganizationRead, PermUserRead,
	PermPolicyReadAll, PermPolicyReadWriteAuthorization, PermAppsAndServicesRead, PermAppsAndServicesReadWrite,
	PermDelegatedAdminRelationshipRead}

// Directory roles for delegated users.
const (
	RoleGlobalAdmin  = "Global Administrator"
	RoleBillingAdmin = "Billing Administrator"
	RoleGlobalReader = "Global Reader"
	// RolePrivilegedRoleAdmin may change the authorization policy (with Global Administrator).
	RolePrivilegedRoleAdmin = "Privileged Role Administrator"
	// RoleAdminAgent is Partner Center's Admin Agent role (membership of the
	// partner tenant's AdminAgents group, not an Entra directory role: it is
	// not in the token's wids). It may read the partner's GDAP customers.
	RoleAdminAgent = "Admin Agent"
)

// roleTemplateIDs are the Entra role template IDs put in the wids claim.
var roleTemplateIDs = map[string]string{
	RoleGlobalAdmin:         "62e90394-69f5-4237-9190-012177145e10",
	RoleBillingAdmin:        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
	RoleGlobalReader:        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
	RolePrivilegedRoleAdmin: "e8611ab8-c189-46e8-94e1-60213ab1f814",
	RoleAdminAgent:          "", // a group membership, checked by the resource (see RoleAdminAgent)
}

// DefaultFederatedAudience is the audience of workload identity tokens.
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// App is an app registration (service principal) in a tenant.
type App struct {
	ClientID string `json:"clientId"`
	// Secret enables client_credentials with client_secret.
	Secret string `json:"secret,omitempty"`
	// CertificatePEM enables client_credentials with a client_assertion signed
	// by the certificate's key (what azidentity.ClientCertificateCredential sends).
	CertificatePEM []byte `json:"-"`
	// Federated enables client_assertion from an external issuer (workload identity).
	Federated *FederatedCredential `json:"federated,omitempty"`
	// Permissions are application permissions, e.g. Policy.ReadWrite.AllowSelfServicePurchase.
	Permissions []string `json:"permissions"`
	// PublicClient allows public client flows (device code without a secret),
	// Entra's "Allow public client flows" switch.
	PublicClient bool `json:"publicClient,omitempty"`
}

// FederatedCredential trusts tokens of an external issuer.
type FederatedCredential struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Audience defaults to api://AzureADTokenExchange.
	Audience string `json:"audience,omitempty"`
	// JWKS is the issuer's JSON Web Key Set.
	JWKS []byte `json:"-"`
}

// appState is a registered app with its parsed keys.
type appState struct {
	App
	cert    *x509.Certificate
	fedKeys map[string]crypto.PublicKey // kid → key ("" = keys without kid)
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID, userID string
}

// RegisterApp registers (or replaces) an app registration in a tenant.
func (s *Server) RegisterApp(tenantID string, app App) error {
	st, err := newAppState(app)
	if err != nil {
		return err
	}
	return s.withTenant(tenantID, func(t *tenant) error {
		t.apps[lower(app.ClientID)] = st
		return nil
	})
}

func newAppState(app App) (*appState, error) {
	if strings.TrimSpace(app.ClientID) == "" {
		return nil, fmt.Errorf("%w: clientId is empty", ErrInvalid)
	}
	app.Permissions = slices.Clone(app.Permissions)
	st := &appState{App: app}
	if len(app.CertificatePEM) > 0 {
		cert, err := parseCertPEM(app.CertificatePEM)
		if err != nil {
			return nil, err
		}
		st.cert = cert
	}
	if app.Federated != nil {
		fc := *app.Federated
		if fc.Audience == "" {
			fc.Audience = DefaultFederatedAudience
		}
		keys, err := parseJWKS(fc.JWKS)
		if err != nil {
			return nil, err
		}
		st.Federated, st.fedKeys = &fc, keys
	}
	return st, nil
}

// parseCertPEM returns the first certificate in a PEM bundle.
func parseCertPEM(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: certificatePEM holds no certificate", ErrInvalid)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate: %v", ErrInvalid, err)
			}
			return c, nil
		}
	}
}

// parseJWKS reads RSA and EC keys from a JSON Web Key Set.
func parseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []struct{ Kty, Kid, N, E, Crv, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: federated JWKS: %v", ErrInvalid, err)
	}
	out := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		key, err := jwkKey(k.Kty, k.N, k.E, k.Crv, k.X, k.Y)
		if err != nil {
			return nil, fmt.Errorf("%w: federated JWKS key %q: %v", ErrInvalid, k.Kid, err)
		}
		out[k.Kid] = key
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: federated JWKS holds no key", ErrInvalid)
	}
	return out, nil
}

func jwkKey(kty, n, e, crv, x, y string) (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch kty {
	case "RSA":
		nb, err1 := dec(n)
		eb, err2 := dec(e)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad RSA parameters")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}, nil
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		c, ok := curves[crv]
		xb, err1 := dec(x)
		yb, err2 := dec(y)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad EC parameters")
		}
		return &ecdsa.PublicKey{Curve: c, X: new(big.Int).SetBytes(xb), Y: new(big.Int).SetBytes(yb)}, nil
	}
	return nil, fmt.Errorf("unsupported key type %q", kty)
}

// RegisterDelegatedUser creates an admin user holding roles and returns a
// refresh token for clientID on that user's behalf. Redeeming it returns a
// new refresh token and invalidates the old one.
func (s *Server) RegisterDelegatedUser(tenantID, clientID string, roles []string) (string, error) {
	for _, r := range roles {
		if _, ok := roleTemplateIDs[r]; !ok {
			return "", fmt.Errorf("%w: unknown role %q", ErrInvalid, r)
		}
	}
	if strings.TrimSpace(clientID) == "" {
		return "", fmt.Errorf("%w: clientId is empty", ErrInvalid)
	}
	id := s.newGUID()
	rt := newRefreshToken()
	err := s.withTenant(tenantID, func(t *tenant) error {
		u := t.addUser(id, fmt.Sprintf("admin-%s@%s", id[:8], t.domain), "Delegated admin "+id[:8])
		u.Roles = slices.Clone(roles)
		t.refresh[rt] = refreshGrant{clientID: lower(clientID), userID: id}
		return nil
	})
	return rt, err
}

// newRefreshToken returns an opaque random refresh token.
func newRefreshToken() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return "0.SIM" + base64.RawURLEncoding.EncodeToString(b)
}
