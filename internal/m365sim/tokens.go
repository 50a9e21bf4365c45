package m365sim

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Resources (token audiences) the simulator issues tokens for.
const (
	// ResourceLicensing is the "M365 License Manager" resource of the licensing API.
	ResourceLicensing = "aeb86249-8ea3-49e2-900b-54cc8e308f85"
	// ResourceGraph is Microsoft Graph.
	ResourceGraph = "https://graph.microsoft.com"
)

// resourcePermissions lists which application permissions belong to which
// resource; a token carries only the roles of its audience.
var resourcePermissions = map[string][]string{
	ResourceLicensing: {PermPolicyRead, PermPolicyReadWrite},
	ResourceGraph: {PermOrganizationRead, PermUserRead, "Directory.Read.All",
		PermPolicyReadAll, PermPolicyReadWriteAuthorization, PermAppsAndServicesRead, PermAppsAndServicesReadWrite,
		PermDelegatedAdminRelationshipRead, PermDelegatedAdminRelationshipReadWrite},
}

// delegatedScopes are the scp claim of delegated tokens per resource (what
// an admin consented to for the client); the user's roles still decide.
var delegatedScopes = map[string]string{
	ResourceLicensing: PermPolicyRead + " " + PermPolicyReadWrite,
	ResourceGraph: strings.Join([]string{PermOrganizationRead, PermUserRead, PermPolicyReadAll, PermPolicyReadWriteAuthorization,
		PermAppsAndServicesReadWrite, PermDelegatedAdminRelationshipRead}, " "),
}

// accessClaims are the claims of an access token the simulator issues.
type accessClaims struct {
	jwt.RegisteredClaims
	TenantID string   `json:"tid"`
	AppID    string   `json:"appid"`
	IDType   string   `json:"idtyp"`
	OID      string   `json:"oid,omitempty"`
	UPN      string   `json:"upn,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Scp      string   `json:"scp,omitempty"`
	Wids     []string `json:"wids,omitempty"`
}

// delegated reports whether the token acts for a user.
func (c *accessClaims) delegated() bool { return c.IDType == "user" }

// hasRole reports whether an app token carries one of perms.
func (c *accessClaims) hasRole(perms ...string) bool {
	for _, p := range perms {
		if slices.Contains(c.Roles, p) {
			return true
		}
	}
	return false
}

// hasScope reports whether a delegated token carries one of scopes.
func (c *accessClaims) hasScope(scopes ...string) bool {
	have := strings.Fields(c.Scp)
	for _, p := range scopes {
		if slices.Contains(have, p) {
			return true
		}
	}
	return false
}

// hasDirectoryRole reports whether a delegated token's user holds one of roles.
func (c *accessClaims) hasDirectoryRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(c.Wids, roleTemplateIDs[r]) {
			return true
		}
	}
	return false
}

// issueToken signs an access token for resource.
func (s *Server) issueToken(issuerBase string, c accessClaims, resource string) (string, time.Duration, error) {
	now := s.now()
	life := s.opts.TokenLifetime
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer:    issuerBase + "/" + c.TenantID + "/v2.0",
		Audience:  jwt.ClaimStrings{resource},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(life)),
		Subject:   c.OID,
		ID:        newRefreshToken()[5:21],
	}
	if c.Subject == "" {
		c.Subject = c.AppID
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = s.keyID
	signed, err := tok.SignedString(s.signingKey)
	return signed, life, err
}

// Access token failures, as the resource APIs report them.
var (
	errNoToken      = errors.New("Authorization header is missing or is not a Bearer token.")
	errBadToken     = errors.New("Access token validation failure. Invalid signature or malformed token.")
	errExpiredToken = errors.New("Lifetime validation failed, the token is expired.")
)

// parseAccessToken checks the bearer token's signature and returns its
// claims. Expiry is checked separately (expired), so an expired token still
// names its tenant for the request log and faults.
func (s *Server) parseAccessToken(r *http.Request) (*accessClaims, error) {
	h := r.Header.Get("Authorization")
	scheme, raw, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" { // the scheme is case-insensitive (RFC 9110)
		return nil, errNoToken
	}
	var c accessClaims
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), &c, func(*jwt.Token) (any, error) { return &s.signingKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())
	if err != nil || c.TenantID == "" {
		return nil, errBadToken
	}
	return &c, nil
}

// expired reports whether the token's lifetime has passed on the simulator's clock.
func (s *Server) expired(c *accessClaims) bool {
	return c.ExpiresAt == nil || !s.now().Before(c.ExpiresAt.Time)
}

// forAudience reports whether the token was issued for resource.
func (c *accessClaims) forAudience(resource string) bool {
	return slices.Contains(c.Audience, resource)
}
