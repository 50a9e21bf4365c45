package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// The OAuth 2.0 device authorization grant (RFC 8628) at Entra's v2
// endpoints, for a delegated admin's first sign-in: its refresh token is what
// a refreshTokenRef Secret holds. azidentity's DeviceCodeCredential keeps the
// refresh token to itself, and MSAL exposes it only inside its serialized
// cache, so the grant is implemented here, on the same pipeline as every
// other token request (the tenant's gate, no redirects, capped answers, typed
// and redacted errors).

// Device code grant constants.
const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// defaultPollInterval is RFC 8628's default when the answer names none.
	defaultPollInterval = 5 * time.Second
	// slowDownStep is added to the interval at every slow_down (RFC 8628 §3.5).
	slowDownStep = 5 * time.Second
)

// Entra's polling answers (RFC 8628 §3.5).
const (
	codeAuthorizationPending = "authorization_pending"
	codeSlowDown             = "slow_down"
	codeExpiredToken         = "expired_token"
)

// DeviceCodePrompt is what the user must do to sign in: open VerificationURI
// and enter UserCode before ExpiresAt. Message is Entra's own instruction.
type DeviceCodePrompt struct {
	UserCode        string
	VerificationURI string
	Message         string
	ExpiresAt       time.Time
}

// DeviceSignIn is the outcome of a device code sign-in.
type DeviceSignIn struct {
	// RefreshToken is a secret: store it, never show it.
	RefreshToken string
	// Scope is what Entra granted.
	Scope string
}

// SignInWithDeviceCode runs the device authorization grant for clientID (a
// public client) in tenant: it asks Entra for a user code (scopes plus
// offline_access), hands it to show, then polls the token endpoint every
// interval (5 s more after each slow_down, each poll bounded by the call
// timeout) until the user approves, declines or the code expires (Entra
// says so, or its expires_in passes), or ctx ends. A refusal is an
// *m365.Error whose Code is Entra's (authorization_declined, expired_token,
// bad_verification_code, invalid_resource, ...); an answer without a
// refresh token is an error too.
func (p *Provider) SignInWithDeviceCode(ctx context.Context, tenant, clientID string, scopes []string, show func(DeviceCodePrompt)) (DeviceSignIn, error) {
	if !validTenantID(tenant) || tenant == "" || clientID == "" {
		return DeviceSignIn{}, invalid("device code sign-in needs a tenant (GUID or domain) and a client ID")
	}
	hc := p.httpClientFor(tenant)
	scope := withOfflineAccess(strings.Join(scopes, " "))
	dc, err := p.requestDeviceCode(ctx, hc, tenant, clientID, scope)
	if err != nil {
		return DeviceSignIn{}, err
	}
	show(dc.prompt)
	form := url.Values{"grant_type": {grantDeviceCode}, "client_id": {clientID}, "device_code": {dc.deviceCode}}
	interval := dc.interval
	// The code is dead at its expires_in whatever the endpoint keeps saying
	// (one more interval lets Entra say so itself).
	live, cancel := context.WithTimeout(ctx, dc.lifetime+interval)
	defer cancel()
	for {
		if err := wait(live, interval); err != nil {
			return DeviceSignIn{}, expiredOr(ctx, err)
		}
		pctx, pcancel := context.WithTimeout(live, p.timeout)
		body, err := postForm(pctx, hc, p.tokenURL(tenant), form, p.now, dc.deviceCode)
		pcancel()
		switch e, _ := m365.AsError(err); {
		case err == nil:
			return signInOf(body, p.now())
		case live.Err() != nil:
			return DeviceSignIn{}, expiredOr(ctx, err)
		case e != nil && e.Code == codeAuthorizationPending:
		case e != nil && e.Code == codeSlowDown:
			interval += slowDownStep
		default:
			return DeviceSignIn{}, err
		}
	}
}

// expiredOr is the error of a flow whose polling ctx ended: the caller's
// own cancellation (parent done) as is, else the code's lifetime ran out,
// which Entra would say as expired_token.
func expiredOr(parent context.Context, err error) error {
	if parent.Err() != nil {
		return err
	}
	return &m365.Error{Op: opGetToken, Kind: m365.Unauthorized, Code: codeExpiredToken,
		Reason: "the device code expired before the sign-in was approved"}
}

// deviceCode is Entra's answer to a device authorization request.
type deviceCode struct {
	deviceCode string
	interval   time.Duration
	lifetime   time.Duration
	prompt     DeviceCodePrompt
}

// requestDeviceCode POSTs {authority}/{tenant}/oauth2/v2.0/devicecode.
func (p *Provider) requestDeviceCode(ctx context.Context, hc *http.Client, tenant, clientID, scope string) (deviceCode, error) {
	cctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	body, err := postForm(cctx, hc, p.authority+"/"+tenant+"/oauth2/v2.0/devicecode", url.Values{"client_id": {clientID}, "scope": {scope}}, p.now)
	if err != nil {
		return deviceCode{}, err
	}
	var v struct {
		DeviceCode      string `json:"device_code"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
		ExpiresIn       any    `json:"expires_in"`
		Interval        any    `json:"interval"`
		Message         string `json:"message"`
	}
	lifetime, ok := time.Duration(0), false
	if json.Unmarshal(body, &v) == nil {
		lifetime, ok = seconds(v.ExpiresIn)
	}
	if !ok || v.DeviceCode == "" || v.UserCode == "" || v.VerificationURI == "" {
		return deviceCode{}, &m365.Error{Op: opGetToken, Kind: m365.InvalidResponse, StatusCode: http.StatusOK,
			Reason: "device code answer lacks device_code, user_code, verification_uri or expires_in"}
	}
	interval, ok := seconds(v.Interval)
	if !ok {
		interval = defaultPollInterval
	}
	return deviceCode{deviceCode: v.DeviceCode, interval: interval, lifetime: lifetime, prompt: DeviceCodePrompt{
		UserCode: v.UserCode, VerificationURI: v.VerificationURI, Message: m365.CleanText(v.Message, m365.MaxReasonLength),
		ExpiresAt: p.now().Add(lifetime),
	}}, nil
}

// signInOf reads the token answer of an approved device code.
func signInOf(body []byte, now time.Time) (DeviceSignIn, error) {
	res, err := decodeTokenAnswer(body, now)
	if err != nil {
		return DeviceSignIn{}, err
	}
	if res.refreshToken == "" {
		return DeviceSignIn{}, &m365.Error{Op: opGetToken, Kind: m365.InvalidResponse, StatusCode: http.StatusOK,
			Reason: "Entra issued no refresh token (offline_access was not granted)"}
	}
	var v struct {
		Scope string `json:"scope"`
	}
	_ = json.Unmarshal(body, &v)
	return DeviceSignIn{RefreshToken: res.refreshToken, Scope: v.Scope}, nil
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
