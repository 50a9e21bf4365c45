package m365sim

import (
	"crypto/sha256"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
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

// issueToken signs an access token for resource, with ES256 where Entra
// uses RS256. Clients must treat access tokens as opaque strings, and
// tokens for Microsoft's own APIs may not even be JWTs (Microsoft identity
// platform, "Access tokens"): only the simulator reads them. An RSA-2048
// signature costs about 30 times a P-256 one (1.9 ms against 67 us here,
// two tokens per tenant), CPU the bench's simulator would take from the
// controller and the API server it shares two cores with.
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
	signed, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(s.accessKey)
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
	raw = strings.TrimSpace(raw)
	if !strings.EqualFold(scheme, "Bearer") || raw == "" { // the scheme is case-insensitive (RFC 9110)
		return nil, errNoToken
	}
	key := sha256.Sum256([]byte(raw))
	if c := s.verified.get(key); c != nil {
		return c, nil
	}
	var c accessClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return &s.accessKey.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithoutClaimsValidation())
	if err != nil || c.TenantID == "" {
		return nil, errBadToken
	}
	s.verified.put(key, &c, s.now())
	return &c, nil
}

// verifiedTokens remembers the access tokens whose signature checked out,
// by their SHA-256. A client sends one token with every call for the
// token's lifetime, and a signature verification per call was a fifth of the
// simulator's CPU in the bench (measured with RS256 tokens), whose cores it
// shares with the controller and the API server it measures. Only the signature check is remembered:
// lifetime and audience are checked at every call. Claims are shared, so
// callers only read them.
type verifiedTokens struct {
	mu     sync.Mutex
	claims map[[sha256.Size]byte]*accessClaims
	sweep  int // size at which put next drops the expired tokens
}

func (v *verifiedTokens) get(key [sha256.Size]byte) *accessClaims {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.claims[key]
}

// put remembers a verified token. The map holds at most twice the tokens
// still within their lifetime (plus a thousand): once it reaches that size,
// the expired ones go.
func (v *verifiedTokens) put(key [sha256.Size]byte, c *accessClaims, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.claims == nil {
		v.claims = map[[sha256.Size]byte]*accessClaims{}
	}
	if len(v.claims) >= v.sweep {
		maps.DeleteFunc(v.claims, func(_ [sha256.Size]byte, c *accessClaims) bool { return c.expiredAt(now) })
		v.sweep = 2*len(v.claims) + 1000
	}
	v.claims[key] = c
}

// expired reports whether the token's lifetime has passed on the simulator's clock.
func (s *Server) expired(c *accessClaims) bool { return c.expiredAt(s.now()) }

// expiredAt reports whether the token's lifetime has passed at now.
func (c *accessClaims) expiredAt(now time.Time) bool {
	return c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time)
}

// forAudience reports whether the token was issued for resource.
func (c *accessClaims) forAudience(resource string) bool {
	return slices.Contains(c.Audience, resource)
}
