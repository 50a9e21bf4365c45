package m365sim

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The OAuth 2.0 device authorization grant of Entra v2 (docs/microsoft-api.md, "Served by the simulator"):
// POST {authority}/{tenant}/oauth2/v2.0/devicecode, then polling the token
// endpoint. There is no browser: the admin API approves or declines a user
// code as the signed-in user would.

// Device code constants.
const (
	grantDeviceCode      = "urn:ietf:params:oauth:grant-type:device_code"
	grantDeviceCodeShort = "device_code" // what MSAL sends; Entra accepts both
	// CommerceModuleClientID is the public client of Microsoft's MSCommerce
	// PowerShell module; every tenant accepts it without a registration.
	CommerceModuleClientID = "3d5cffa9-04da-4657-8cab-c7f074657cad"
	// DeviceVerificationURI is where Entra sends the user to enter the code.
	DeviceVerificationURI = "https://microsoft.com/devicelogin"
	// DefaultDeviceCodeInterval and DefaultDeviceCodeLifetime are Entra's
	// interval (5 s) and expires_in (900 s).
	DefaultDeviceCodeInterval = 5 * time.Second
	DefaultDeviceCodeLifetime = 15 * time.Minute
	// slowDownStep is added to the interval at every slow_down (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
	// userCodeAlphabet has no vowels or look-alikes (no words, no 0/O, 1/I).
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"
	userCodeLength   = 9
)

// KnownPublicClients are Microsoft's first-party public clients: usable for
// the device code flow in every tenant without an app registration.
var KnownPublicClients = []string{CommerceModuleClientID}

// Device code statuses, as the admin API shows them.
const (
	DeviceCodePending  = "pending"
	DeviceCodeApproved = "approved"
	DeviceCodeDeclined = "declined"
	DeviceCodeRedeemed = "redeemed"
	DeviceCodeExpired  = "expired"
)

// Device code errors of the Go API; the admin API answers 404 and 409.
var (
	ErrDeviceCodeNotFound   = errors.New("device code not found")
	ErrDeviceCodeNotPending = errors.New("device code is not pending (approved, declined, redeemed or expired)")
)

// DeviceCode is a device authorization as the admin API shows it; the
// device_code itself (the client's secret) is never shown.
type DeviceCode struct {
	UserCode  string    `json:"userCode"`
	ClientID  string    `json:"clientId"`
	Scope     string    `json:"scope"`
	Status    string    `json:"status"`
	ExpiresAt time.Time `json:"expiresAt"`
	// UserID is the user who approved it.
	UserID string `json:"userId,omitempty"`
	// IntervalSeconds is the polling interval the flow enforces now (it
	// grows by 5 s at every slow_down).
	IntervalSeconds int `json:"intervalSeconds"`
}

// DeviceApproval is the user who signs in at the verification URI: an
// existing user (by UPN) or, when UserPrincipalName is empty or unknown, a new
// admin user. Roles, when given, become the user's directory roles.
type DeviceApproval struct {
	UserPrincipalName string   `json:"userPrincipalName,omitempty"`
	Roles             []string `json:"roles,omitempty"`
}

// deviceFlow is one device authorization.
type deviceFlow struct {
	deviceCode, userCode, clientID, scope, resource string
	expires, lastPoll                               time.Time
	interval                                        time.Duration
	status, userID                                  string
	seq                                             int // creation order
	// slowDown makes the next poll of a pending flow answer slow_down.
	slowDown bool
}

// deviceFlows are a tenant's device authorizations (zero value usable).
type deviceFlows struct {
	byDevice map[string]*deviceFlow // key: device_code
	byUser   map[string]*deviceFlow // key: upper-case user code
	seq      int
}

func (d *deviceFlows) add(f *deviceFlow, now time.Time) {
	if d.byDevice == nil {
		d.byDevice, d.byUser = map[string]*deviceFlow{}, map[string]*deviceFlow{}
	}
	for code, old := range d.byDevice { // forget flows expired for a while
		if now.Sub(old.expires) > time.Hour {
			delete(d.byDevice, code)
			delete(d.byUser, old.userCode)
		}
	}
	d.seq++
	f.seq = d.seq
	d.byDevice[f.deviceCode], d.byUser[f.userCode] = f, f
}

func (f *deviceFlow) view(now time.Time) DeviceCode {
	st := f.status
	if st == DeviceCodePending && !now.Before(f.expires) {
		st = DeviceCodeExpired
	}
	return DeviceCode{UserCode: f.userCode, ClientID: f.clientID, Scope: f.scope, Status: st, ExpiresAt: f.expires, UserID: f.userID,
		IntervalSeconds: wholeSeconds(f.interval)}
}

// handleDeviceCode serves POST /{tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	resp, eerr := s.startDeviceFlow(r)
	if eerr != nil {
		s.writeEntraError(w, eerr)
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) startDeviceFlow(r *http.Request) (map[string]any, *entraError) {
	if err := r.ParseForm(); err != nil {
		return nil, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must be application/x-www-form-urlencoded.")
	}
	t, clientID, scope := callOf(r).tenant, r.PostForm.Get("client_id"), r.PostForm.Get("scope")
	if clientID == "" {
		return nil, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	}
	resource, eerr := parseScope(scope, true)
	if eerr != nil {
		return nil, eerr
	}
	now := s.now()
	f := &deviceFlow{deviceCode: "DAQABIQEAAAD" + newRefreshToken()[5:], clientID: lower(clientID), scope: scope, resource: resource,
		expires: now.Add(s.opts.DeviceCodeLifetime), interval: s.opts.DeviceCodeInterval, status: DeviceCodePending}
	t.mu.Lock()
	defer t.mu.Unlock()
	if eerr := t.publicClientAllowed(clientID); eerr != nil {
		return nil, eerr
	}
	if eerr := t.principalMissing(resource); eerr != nil {
		return nil, eerr
	}
	f.userCode = t.newUserCode()
	t.devices.add(f, now)
	return map[string]any{
		"user_code": f.userCode, "device_code": f.deviceCode, "verification_uri": DeviceVerificationURI,
		"expires_in": int(s.opts.DeviceCodeLifetime / time.Second), "interval": wholeSeconds(f.interval),
		"message": fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", DeviceVerificationURI, f.userCode),
	}, nil
}

// publicClientAllowed lets a known Microsoft public client or an app
// registration that allows public client flows start a device flow. t must
// be locked.
func (t *tenant) publicClientAllowed(clientID string) *entraError {
	app := t.apps[lower(clientID)]
	switch {
	case slices.Contains(KnownPublicClients, lower(clientID)) || (app != nil && app.PublicClient):
		return nil
	case app != nil:
		return entraErr(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. The application '%s' does not allow public client flows.", app.ClientID)
	}
	return entraErr(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clip(clientID), t.id)
}

// newUserCode returns a user code not in use in the tenant. t must be locked.
func (t *tenant) newUserCode() string {
	for {
		b := make([]byte, userCodeLength)
		for i := range b {
			n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(userCodeAlphabet))))
			b[i] = userCodeAlphabet[n.Int64()]
		}
		if _, taken := t.devices.byUser[string(b)]; !taken {
			return string(b)
		}
	}
}

func wholeSeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// deviceCodeGrant polls grant_type=urn:ietf:params:oauth:grant-type:device_code.
func (s *Server) deviceCodeGrant(r *http.Request) (map[string]any, *entraError) {
	t, f := callOf(r).tenant, r.PostForm
	clientID, code := f.Get("client_id"), f.Get("device_code")
	if clientID == "" || code == "" {
		return nil, entraErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameters: 'client_id' and 'device_code'.")
	}
	now := s.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	flow := t.devices.byDevice[code]
	if flow == nil || flow.clientID != lower(clientID) {
		return nil, entraErr(http.StatusBadRequest, "bad_verification_code", 70018, "The provided value for the input parameter 'device_code' is not valid.")
	}
	if eerr := flow.poll(now); eerr != nil {
		return nil, eerr
	}
	u := t.users[flow.userID]
	if u == nil {
		return nil, entraErr(http.StatusBadRequest, "invalid_grant", 50034, "The user account does not exist in the directory.")
	}
	resp, eerr := s.delegatedTokens(requestOrigin(r), t, clientID, u, flow.resource, flow.scope, slices.Contains(strings.Fields(flow.scope), "offline_access"))
	if eerr != nil {
		return nil, eerr
	}
	flow.status = DeviceCodeRedeemed
	if slices.Contains(strings.Fields(flow.scope), "openid") {
		if resp["id_token"], eerr = s.idToken(requestOrigin(r), t, clientID, u); eerr != nil {
			return nil, eerr
		}
	}
	if f.Get("client_info") == "1" {
		info, _ := json.Marshal(map[string]string{"uid": u.ID, "utid": t.id})
		resp["client_info"] = base64.RawURLEncoding.EncodeToString(info)
	}
	return resp, nil
}

// poll applies one poll to the flow: nil when it is approved, otherwise the
// error Entra answers (authorization_pending, slow_down when polled faster
// than the interval, which then grows by 5 s, authorization_declined,
// expired_token, or invalid_grant for a code already redeemed).
func (f *deviceFlow) poll(now time.Time) *entraError {
	last := f.lastPoll
	f.lastPoll = now
	switch {
	case !now.Before(f.expires):
		return entraErr(http.StatusBadRequest, "expired_token", 70019, "Verification code expired. Have the user retry the sign-in.")
	case f.status == DeviceCodeDeclined:
		return entraErr(http.StatusBadRequest, "authorization_declined", 70000, "The end user declined the authorization request.")
	case f.status == DeviceCodeRedeemed:
		return entraErr(http.StatusBadRequest, "invalid_grant", 70000, "Provided grant is invalid or malformed. The device code was already redeemed.")
	case f.status == DeviceCodeApproved:
		return nil
	case f.slowDown || (!last.IsZero() && now.Sub(last) < f.interval):
		f.slowDown = false
		f.interval += slowDownStep
		return entraErr(http.StatusBadRequest, "slow_down", 70016, "OAuth 2.0 device flow error. Polling too fast: wait at least %d seconds between requests.", wholeSeconds(f.interval))
	}
	return entraErr(http.StatusBadRequest, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
}

// delegatedTokens issues a delegated access token for user u and, when
// withRefresh, a new refresh token for (clientID, u). The answer's scope
// lists the granted permissions and echoes the requested scopes (MSAL treats
// a requested scope missing from it as declined). t must be locked.
func (s *Server) delegatedTokens(issuerBase string, t *tenant, clientID string, u *user, resource, requested string, withRefresh bool) (map[string]any, *entraError) {
	wids := []string{}
	for _, role := range u.Roles {
		if id := roleTemplateIDs[role]; id != "" {
			wids = append(wids, id)
		}
	}
	tok, life, err := s.issueToken(issuerBase, accessClaims{TenantID: t.id, AppID: clientID, IDType: "user", OID: u.ID, UPN: u.UPN,
		Scp: delegatedScopes[resource], Wids: wids}, resource)
	if err != nil {
		return nil, entraErr(http.StatusInternalServerError, "server_error", 90100, "Token signing failed.")
	}
	resp := tokenResponse(tok, life)
	granted := []string{}
	for _, p := range strings.Fields(delegatedScopes[resource]) {
		granted = append(granted, resource+"/"+p)
	}
	for _, f := range strings.Fields(requested) {
		if !slices.Contains(granted, f) {
			granted = append(granted, f)
		}
	}
	if withRefresh {
		next := newRefreshToken()
		t.refresh[next] = refreshGrant{clientID: lower(clientID), userID: u.ID}
		resp["refresh_token"] = next
		if !slices.Contains(granted, "offline_access") {
			granted = append(granted, "offline_access")
		}
	}
	resp["scope"] = strings.Join(granted, " ")
	return resp, nil
}

// idToken signs an OpenID Connect ID token for u (audience: the client).
func (s *Server) idToken(issuerBase string, t *tenant, clientID string, u *user) (string, *entraError) {
	now := s.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": clientID, "iss": issuerBase + "/" + t.id + "/v2.0", "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(s.opts.TokenLifetime).Unix(), "sub": u.ID, "oid": u.ID, "tid": t.id,
		"preferred_username": u.UPN, "name": u.DisplayName, "ver": "2.0",
	})
	tok.Header["kid"] = s.keyID
	signed, err := tok.SignedString(s.signingKey)
	if err != nil {
		return "", entraErr(http.StatusInternalServerError, "server_error", 90100, "Token signing failed.")
	}
	return signed, nil
}

// ApproveDeviceCode signs in at the verification URI as the given user and
// approves the user code; the next poll returns the tokens. It returns the
// user who signed in.
func (s *Server) ApproveDeviceCode(tenantID, userCode string, a DeviceApproval) (User, error) {
	for _, r := range a.Roles {
		if _, ok := roleTemplateIDs[r]; !ok {
			return User{}, fmt.Errorf("%w: unknown role %q", ErrInvalid, r)
		}
	}
	newID := s.newGUID()
	var out User
	err := s.withPendingFlow(tenantID, userCode, func(t *tenant, f *deviceFlow) {
		u := t.findUser(a.UserPrincipalName)
		if u == nil {
			upn := a.UserPrincipalName
			if upn == "" {
				upn = fmt.Sprintf("admin-%s@%s", newID[:8], t.domain)
			}
			u = t.addUser(newID, upn, "Admin "+strings.Split(upn, "@")[0])
		}
		if len(a.Roles) > 0 {
			u.Roles = slices.Clone(a.Roles)
		}
		f.status, f.userID = DeviceCodeApproved, u.ID
		out = t.userView(u)
	})
	return out, err
}

// DeclineDeviceCode declines a user code, as a user who cancels the sign-in.
func (s *Server) DeclineDeviceCode(tenantID, userCode string) (DeviceCode, error) {
	var out DeviceCode
	err := s.withPendingFlow(tenantID, userCode, func(_ *tenant, f *deviceFlow) {
		f.status = DeviceCodeDeclined
		out = f.view(s.now())
	})
	return out, err
}

// SlowDownDeviceCode makes the next poll of a pending device code answer
// slow_down, as Entra may at any poll (under load): the flow's interval
// grows by 5 s, and a client that does not wait that much longer is told
// slow_down again.
func (s *Server) SlowDownDeviceCode(tenantID, userCode string) (DeviceCode, error) {
	var out DeviceCode
	err := s.withPendingFlow(tenantID, userCode, func(_ *tenant, f *deviceFlow) {
		f.slowDown = true
		out = f.view(s.now())
	})
	return out, err
}

// withPendingFlow runs fn on a pending, unexpired flow with the tenant locked.
func (s *Server) withPendingFlow(tenantID, userCode string, fn func(*tenant, *deviceFlow)) error {
	now := s.now()
	return s.withTenant(tenantID, func(t *tenant) error {
		f := t.devices.byUser[strings.ToUpper(strings.TrimSpace(userCode))]
		switch {
		case f == nil:
			return fmt.Errorf("%w: %s", ErrDeviceCodeNotFound, clip(userCode))
		case f.view(now).Status != DeviceCodePending:
			return fmt.Errorf("%w: %s is %s", ErrDeviceCodeNotPending, f.userCode, f.view(now).Status)
		}
		fn(t, f)
		return nil
	})
}

// DeviceCodes lists a tenant's device authorizations, oldest first.
func (s *Server) DeviceCodes(tenantID string) ([]DeviceCode, error) {
	now := s.now()
	out := []DeviceCode{}
	var flows []*deviceFlow
	err := s.withTenant(tenantID, func(t *tenant) error {
		for _, f := range t.devices.byDevice {
			flows = append(flows, f)
		}
		slices.SortFunc(flows, func(a, b *deviceFlow) int { return cmp.Compare(a.seq, b.seq) })
		for _, f := range flows {
			out = append(out, f.view(now))
		}
		return nil
	})
	return out, err
}
