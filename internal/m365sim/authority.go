package m365sim

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Token endpoint constants.
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	scopeDefaultSuffix     = "/.default"
	assertionLeeway        = 5 * time.Minute
)

// entraError is an error answer of the token endpoint.
type entraError struct {
	status int
	code   string // error, e.g. invalid_client
	aadsts int
	msg    string
}

func (e *entraError) Error() string { return fmt.Sprintf("AADSTS%d: %s", e.aadsts, e.msg) }

func entraErr(status int, code string, aadsts int, format string, args ...any) *entraError {
	return &entraError{status: status, code: code, aadsts: aadsts, msg: fmt.Sprintf(format, args...)}
}

// writeEntraError answers in Entra's error format. Messages never contain
// secrets or assertions.
func (s *Server) writeEntraError(w http.ResponseWriter, e *entraError) {
	trace, corr := firstNonEmpty(w.Header().Get(headerEntraRequestID), uuid.NewString()), firstNonEmpty(w.Header().Get(headerClientRequestID), uuid.NewString())
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, e.status, map[string]any{
		"error": e.code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			e.aadsts, e.msg, trace, corr, ts),
		"error_codes":    []int{e.aadsts},
		"timestamp":      ts,
		"trace_id":       trace,
		"correlation_id": corr,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", e.aadsts),
	})
}

// authorityMux serves the Entra endpoints. The tenant was resolved by the
// pipeline from the first path segment.
func (s *Server) authorityMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfig)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleKeys)
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.handleKeys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", s.handleDeviceCode)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeEntraError(w, entraErr(http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests or a known path."))
	})
	return mux
}

// requestOrigin is the origin the client used; metadata names it so that
// MSAL's issuer check (issuer host = authority host) passes on any port.
func requestOrigin(r *http.Request) string { return "https://" + r.Host }

// handleOpenIDConfig serves GET /{tenant}/v2.0/.well-known/openid-configuration.
func (s *Server) handleOpenIDConfig(w http.ResponseWriter, r *http.Request) {
	c := callOf(r)
	base := requestOrigin(r) + "/" + c.tenant.id
	pathBase := requestOrigin(r) + "/" + r.PathValue("tenant")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        pathBase + "/oauth2/v2.0/token",
		"authorization_endpoint":                pathBase + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         pathBase + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  pathBase + "/oauth2/v2.0/logout",
		"jwks_uri":                              pathBase + "/discovery/v2.0/keys",
		"issuer":                                base + "/v2.0",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// handleKeys serves the token signing keys.
func (s *Server) handleKeys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.jwks())
}

// handleToken serves POST /{tenant}/oauth2/v2.0/token.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.writeEntraError(w, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded."))
		return
	}
	if eerr := refuseV1Parameters(r); eerr != nil {
		s.writeEntraError(w, eerr)
		return
	}
	var resp map[string]any
	var eerr *entraError
	switch g := r.PostForm.Get("grant_type"); g {
	case grantClientCredentials:
		resp, eerr = s.clientCredentials(r)
	case grantRefreshToken:
		resp, eerr = s.refreshTokenGrant(r)
	case grantDeviceCode, grantDeviceCodeShort:
		resp, eerr = s.deviceCodeGrant(r)
	case "":
		eerr = entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	default:
		eerr = entraErr(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", clip(g))
	}
	if eerr != nil {
		s.writeEntraError(w, eerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// clip shortens a client-supplied value before it is echoed in an error.
func clip(v string) string {
	if len(v) > 64 {
		return v[:64] + "..."
	}
	return v
}

// parseScope accepts "<resource>/.default" (plus extra OIDC scopes when
// allowExtra) and returns the resource.
func parseScope(scope string, allowExtra bool) (string, *entraError) {
	var resource string
	for _, f := range strings.Fields(scope) {
		if allowExtra && slices.Contains([]string{"offline_access", "openid", "profile"}, f) {
			continue
		}
		res, ok := strings.CutSuffix(f, scopeDefaultSuffix)
		if !ok || resource != "" {
			return "", entraErr(http.StatusBadRequest, "invalid_request", 70011, "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", clip(scope))
		}
		resource = res
	}
	switch strings.TrimSuffix(resource, "/") {
	case ResourceLicensing, "api://" + ResourceLicensing:
		return ResourceLicensing, nil
	case ResourceGraph, "00000003-0000-0000-c000-000000000000":
		return ResourceGraph, nil
	case "":
		return "", entraErr(http.StatusBadRequest, "invalid_request", 90014, "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request.")
	}
	return "", entraErr(http.StatusBadRequest, "invalid_request", 500011, "The resource principal named %s was not found in the tenant.", clip(resource))
}

// clientCredentials handles grant_type=client_credentials with a secret or a
// client assertion (certificate or federated).
func (s *Server) clientCredentials(r *http.Request) (map[string]any, *entraError) {
	c := callOf(r)
	f := r.PostForm
	clientID := f.Get("client_id")
	if clientID == "" {
		return nil, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	resource, eerr := parseScope(f.Get("scope"), true) // MSAL adds "openid offline_access profile"
	if eerr != nil {
		return nil, eerr
	}
	c.tenant.mu.Lock()
	app := c.tenant.apps[lower(clientID)]
	c.tenant.mu.Unlock()
	if app == nil {
		return nil, entraErr(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clip(clientID), c.tenant.id)
	}
	switch {
	case f.Has("client_secret"):
		if app.Secret == "" || subtle.ConstantTimeCompare([]byte(app.Secret), []byte(f.Get("client_secret"))) != 1 {
			return nil, entraErr(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID)
		}
	case f.Get("client_assertion_type") == assertionTypeJWTBearer && f.Get("client_assertion") != "":
		if eerr := s.checkAssertion(r, app, f.Get("client_assertion")); eerr != nil {
			return nil, eerr
		}
	default:
		return nil, entraErr(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	c.tenant.mu.Lock()
	eerr = c.tenant.principalMissing(resource)
	c.tenant.mu.Unlock()
	if eerr != nil {
		return nil, eerr
	}
	roles := []string{}
	for _, p := range app.Permissions {
		if slices.Contains(resourcePermissions[resource], p) {
			roles = append(roles, p)
		}
	}
	tok, life, err := s.issueToken(requestOrigin(r), accessClaims{TenantID: c.tenant.id, AppID: app.ClientID, IDType: "app", OID: app.ClientID, Roles: roles}, resource)
	if err != nil {
		return nil, entraErr(http.StatusInternalServerError, "server_error", 90100, "Token signing failed.")
	}
	c.caller = app.ClientID
	return tokenResponse(tok, life), nil
}

func tokenResponse(tok string, life time.Duration) map[string]any {
	secs := int(life / time.Second)
	return map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok}
}

// checkAssertion verifies a client assertion: the app's certificate
// assertion (iss = sub = client ID) or a federated assertion.
func (s *Server) checkAssertion(r *http.Request, app *appState, assertion string) *entraError {
	var unverified jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &unverified); err != nil {
		return entraErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
	}
	if app.cert != nil && (unverified.Issuer == app.ClientID || app.Federated == nil) {
		return s.checkCertAssertion(r, app, assertion)
	}
	if app.Federated != nil {
		return s.checkFederatedAssertion(app, assertion, unverified.Issuer)
	}
	return entraErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. The application has no certificate or federated credential.")
}

// assertionMethods are the algorithms accepted for client assertions.
var assertionMethods = []string{"RS256", "PS256", "ES256", "RS384", "PS384", "ES384"}

// checkCertAssertion verifies the signature with the certificate's key, the
// thumbprint header if present, aud = token endpoint, iss = sub = client ID
// and the lifetime.
func (s *Server) checkCertAssertion(r *http.Request, app *appState, assertion string) *entraError {
	endpoint := requestOrigin(r) + r.URL.Path
	tenantEndpoint := requestOrigin(r) + "/" + callOf(r).tenant.id + "/oauth2/v2.0/token"
	var claims jwt.RegisteredClaims
	tok, err := s.parseAssertion(assertion, &claims, func(*jwt.Token) (any, error) { return app.cert.PublicKey, nil })
	switch {
	case errorsIsExpired(err):
		return entraErr(http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range.")
	case err != nil:
		return entraErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
	case !thumbprintMatches(tok.Header, app.cert.Raw):
		return entraErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key was not found.]")
	case claims.Issuer != app.ClientID || claims.Subject != app.ClientID:
		return entraErr(http.StatusUnauthorized, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
	case !audienceMatches(claims.Audience, endpoint, tenantEndpoint):
		return entraErr(http.StatusBadRequest, "invalid_request", 50027, "Invalid JWT token. The audience of the client assertion does not match the token endpoint.")
	}
	return nil
}

// parseAssertion verifies a client assertion's signature and lifetime. The
// client signs with its own wall clock, so the lifetime is accepted when it
// holds on either the simulator's (possibly injected) clock or the wall clock.
func (s *Server) parseAssertion(assertion string, claims *jwt.RegisteredClaims, key jwt.Keyfunc) (*jwt.Token, error) {
	var tok *jwt.Token
	var err error
	for _, now := range []func() time.Time{s.now, time.Now} {
		*claims = jwt.RegisteredClaims{}
		tok, err = jwt.ParseWithClaims(assertion, claims, key, jwt.WithValidMethods(assertionMethods),
			jwt.WithTimeFunc(now), jwt.WithLeeway(assertionLeeway), jwt.WithExpirationRequired())
		if !errorsIsExpired(err) {
			break
		}
	}
	return tok, err
}

// thumbprintMatches checks x5t#S256 / x5t headers (standard or URL base64)
// against the certificate; a missing header is accepted.
func thumbprintMatches(h map[string]any, der []byte) bool {
	s256, s1 := sha256.Sum256(der), sha1.Sum(der)
	for name, sum := range map[string][]byte{"x5t#S256": s256[:], "x5t": s1[:]} {
		v, ok := h[name].(string)
		if !ok {
			continue
		}
		if v != base64.StdEncoding.EncodeToString(sum) && v != base64.RawURLEncoding.EncodeToString(sum) && v != base64.URLEncoding.EncodeToString(sum) {
			return false
		}
	}
	return true
}

func audienceMatches(aud jwt.ClaimStrings, want ...string) bool {
	for _, a := range aud {
		for _, w := range want {
			if strings.EqualFold(a, w) {
				return true
			}
		}
	}
	return false
}

func errorsIsExpired(err error) bool {
	return err != nil && (jwtErrIs(err, jwt.ErrTokenExpired) || jwtErrIs(err, jwt.ErrTokenNotValidYet))
}

// checkFederatedAssertion verifies an external issuer's token against the
// app's federated credential: issuer, signature (JWKS), subject, audience.
func (s *Server) checkFederatedAssertion(app *appState, assertion, issuer string) *entraError {
	fc := app.Federated
	if issuer != fc.Issuer {
		return entraErr(http.StatusBadRequest, "invalid_request", 700211, "No matching federated identity record found for presented assertion issuer '%s'.", clip(issuer))
	}
	var claims jwt.RegisteredClaims
	_, err := s.parseAssertion(assertion, &claims, func(t *jwt.Token) (any, error) { return federatedKey(app.fedKeys, t) })
	switch {
	case errorsIsExpired(err):
		return entraErr(http.StatusBadRequest, "invalid_client", 700024, "Client assertion is not within its valid time range.")
	case err != nil:
		return entraErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation.")
	case claims.Subject != fc.Subject:
		return entraErr(http.StatusBadRequest, "invalid_request", 700213, "No matching federated identity record found for presented assertion subject '%s'.", clip(claims.Subject))
	case !slices.Contains(claims.Audience, fc.Audience):
		return entraErr(http.StatusBadRequest, "invalid_request", 700212, "No matching federated identity record found for presented assertion audience '%s'.", clip(strings.Join(claims.Audience, ",")))
	}
	return nil
}

// federatedKey picks the JWKS key named by the token's kid (or the only key).
func federatedKey(keys map[string]crypto.PublicKey, t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	if len(keys) == 1 && kid == "" {
		for _, k := range keys {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no key %q in the issuer's key set", kid)
}

// refreshTokenGrant redeems a delegated refresh token: it returns an access
// token and a new refresh token and invalidates the old one.
func (s *Server) refreshTokenGrant(r *http.Request) (map[string]any, *entraError) {
	c := callOf(r)
	f := r.PostForm
	clientID, rt := f.Get("client_id"), f.Get("refresh_token")
	c.caller = clientID
	if clientID == "" || rt == "" {
		return nil, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameters: 'client_id' and 'refresh_token'.")
	}
	resource, eerr := parseScope(f.Get("scope"), true)
	if eerr != nil {
		return nil, eerr
	}
	t := c.tenant
	t.mu.Lock()
	defer t.mu.Unlock()
	if eerr := t.principalMissing(resource); eerr != nil {
		return nil, eerr
	}
	grant, ok := t.refresh[rt]
	if !ok || grant.clientID != lower(clientID) {
		return nil, entraErr(http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed. The refresh token was not found, was already redeemed or was issued to another client.")
	}
	if app := t.apps[lower(clientID)]; app != nil && f.Has("client_secret") &&
		(app.Secret == "" || subtle.ConstantTimeCompare([]byte(app.Secret), []byte(f.Get("client_secret"))) != 1) {
		return nil, entraErr(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided.")
	}
	u := t.users[grant.userID]
	if u == nil {
		delete(t.refresh, rt)
		return nil, entraErr(http.StatusBadRequest, "invalid_grant", 50034, "The user account does not exist in the directory.")
	}
	resp, eerr := s.delegatedTokens(requestOrigin(r), t, clientID, u, resource, f.Get("scope"), true)
	if eerr == nil {
		delete(t.refresh, rt)
	}
	return resp, eerr
}
