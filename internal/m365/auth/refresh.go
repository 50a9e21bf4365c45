package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/sync/singleflight"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Delegated token refresh.
const (
	// scopeOfflineAccess asks Entra for a rotated refresh token.
	scopeOfflineAccess = "offline_access"
	// refreshMargin: an access token is renewed this long before it expires
	// (or at half its lifetime when that is shorter).
	refreshMargin = 5 * time.Minute
	// maxTokenResponse bounds how much of a token answer is read.
	maxTokenResponse = 1 << 20
)

// ErrNoRefreshToken is returned (wrapped) by a RefreshTokenStore whose Secret
// has no (or an empty) refresh token.
var ErrNoRefreshToken = errors.New("no refresh token stored")

// refreshCredential redeems a delegated refresh token at Entra's token
// endpoint (grant_type=refresh_token) and writes the rotated refresh token
// back to its store with an optimistic lock.
//
// Access tokens are cached per scope until refreshMargin before expiry.
// Concurrent GetToken calls for one scope share one redemption
// (single-flight), and redemptions are serialized per refresh-token store
// across every tenant that shares it (a partner's GDAP login serves many
// customer tenants), since each one rotates the same refresh token.
//
// A rotated token the store refuses to take (unsaved.go) does not fail the
// call: the access token is returned and cached, the rotated token is kept
// in memory for the store's next redemption, and UnsavedRefreshToken reports
// the failure.
type refreshCredential struct {
	tenant, clientID, tokenURL string
	http                       *http.Client
	store                      RefreshTokenStore
	now                        func() time.Time
	timeout                    time.Duration

	flight singleflight.Group
	state  *storeState // one redemption at a time per store, shared by the Provider

	mu     sync.Mutex
	tokens map[string]cachedToken // by scope
}

type cachedToken struct {
	tok       azcore.AccessToken
	refreshAt time.Time
}

func (p *Provider) newRefreshCredential(m Material) *refreshCredential {
	return &refreshCredential{
		tenant:   m.TenantID,
		clientID: m.ClientID,
		tokenURL: p.tokenURL(m.TenantID),
		http:     p.httpClientFor(m.TenantID),
		store:    m.RefreshTokens,
		now:      p.now,
		timeout:  p.timeout,
		tokens:   map[string]cachedToken{},
		state:    p.storeState(m.RefreshTokens.Key()),
	}
}

// storeState returns the one state of a refresh-token store.
func (p *Provider) storeState(key string) *storeState {
	st, _ := p.stores.LoadOrStore(key, &storeState{})
	return st.(*storeState)
}

// GetToken returns a cached access token for opts.Scopes or redeems the
// refresh token for a new one.
func (c *refreshCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) == 0 {
		return azcore.AccessToken{}, &m365.Error{Op: opGetToken, Kind: m365.BadRequest, Reason: "no scope requested"}
	}
	scope := strings.Join(opts.Scopes, " ")
	if tok, ok := c.cached(scope); ok {
		return tok, nil
	}
	ch := c.flight.DoChan(scope, func() (any, error) {
		// The shared redemption outlives a single caller giving up.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		return c.refresh(rctx, scope)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return azcore.AccessToken{}, r.Err
		}
		return r.Val.(azcore.AccessToken), nil
	case <-ctx.Done():
		return azcore.AccessToken{}, ctx.Err()
	}
}

// cached returns the access token for scope unless it is due for renewal.
func (c *refreshCredential) cached(scope string) (azcore.AccessToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[scope]
	if !ok || !c.now().Before(t.refreshAt) {
		return azcore.AccessToken{}, false
	}
	return t.tok, true
}

func (c *refreshCredential) remember(scope string, tok azcore.AccessToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens[scope] = cachedToken{tok: tok, refreshAt: tok.RefreshOn}
}

// refresh loads the refresh token, redeems it for scope and saves the rotated
// one. When another writer rotated the token first (a conflict on save, or
// invalid_grant for a token that was replaced meanwhile), it re-loads and
// redeems the stored token once; it never overwrites a newer token. While
// an earlier rotation is unsaved and the store still holds the token it was
// redeemed from, that rotation is redeemed instead (the stored one was used
// up); a rotation the store refuses again stays unsaved, and the access
// token is returned all the same.
func (c *refreshCredential) refresh(ctx context.Context, scope string) (azcore.AccessToken, error) {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	if tok, ok := c.cached(scope); ok {
		return tok, nil
	}
	base, version, err := c.load(ctx)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	rt := c.state.newest(base)
	res, err := c.redeem(ctx, rt, scope)
	if isRefusedGrant(err) {
		res, rt, version, err = c.retryIfRotated(ctx, rt, scope, err)
		base = rt
	}
	if err != nil {
		return azcore.AccessToken{}, err
	}
	if res.refreshToken == "" {
		res.refreshToken = rt // not rotated: rt is still the newest
	}
	if err := c.state.keep(c.saveRotated(ctx, base, version, &res, scope)); err != nil {
		return azcore.AccessToken{}, err
	}
	c.remember(scope, res.token)
	return res.token, nil
}

// retryIfRotated re-loads the store after Entra refused rt: when the stored
// token differs, someone else rotated it and it is redeemed once; otherwise
// the refusal stands.
func (c *refreshCredential) retryIfRotated(ctx context.Context, rt, scope string, refusal error) (redeemed, string, string, error) {
	stored, version, err := c.load(ctx)
	if err != nil {
		return redeemed{}, "", "", err
	}
	if stored == rt {
		return redeemed{}, "", "", refusal
	}
	res, err := c.redeem(ctx, stored, scope)
	return res, stored, version, err
}

// saveRotated writes res's rotated refresh token over rt (loaded at version).
// On a conflict it re-loads: if only the version moved, it saves again with
// the new version; if the token itself changed, another writer rotated it, so
// the stored token is redeemed once instead (res is replaced) and that
// rotation saved. A second conflict is a Transient error; any other failure
// a *RefreshTokenNotSavedError carrying the rotation (saveError).
func (c *refreshCredential) saveRotated(ctx context.Context, rt, version string, res *redeemed, scope string) error {
	if res.refreshToken == "" || res.refreshToken == rt {
		return nil
	}
	err := c.store.Save(ctx, res.refreshToken, version)
	if !errors.Is(err, ErrConflict) {
		return c.saveError(err, rt, res.refreshToken)
	}
	stored, newVersion, err := c.load(ctx)
	if err != nil {
		return c.saveError(err, rt, res.refreshToken)
	}
	if stored != rt {
		again, err := c.redeem(ctx, stored, scope)
		if err != nil {
			return err
		}
		*res = again
		if res.refreshToken == "" || res.refreshToken == stored {
			return nil
		}
	}
	return c.saveError(c.store.Save(ctx, res.refreshToken, newVersion), stored, res.refreshToken, rt)
}

func (c *refreshCredential) load(ctx context.Context) (string, string, error) {
	rt, version, err := c.store.Load(ctx)
	if err == nil && rt == "" {
		err = fmt.Errorf("%s: %w", c.store.Key(), ErrNoRefreshToken)
	}
	if err != nil {
		return "", "", sourceError("refresh token "+c.store.Key(), err)
	}
	return rt, version, nil
}

// saveError maps a failed Save of rotated over base (the token the store
// held): a second conflict is Transient (another writer keeps rotating; the
// next reconcile starts over from the store), any other failure a
// *RefreshTokenNotSavedError (the rotation is kept unsaved). redact are
// further tokens the cause must not show.
func (c *refreshCredential) saveError(err error, base, rotated string, redact ...string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrConflict):
		return &m365.Error{Op: opGetToken, Kind: m365.Transient, Code: "refresh_token_not_saved",
			Reason: "saving the rotated refresh token to " + c.store.Key(), Err: err}
	}
	e := notSaved(c.store.Key(), err, append(redact, base, rotated)...)
	e.base, e.rotated = base, rotated
	return e
}

// redeemed is a successful answer of the token endpoint.
type redeemed struct {
	token        azcore.AccessToken
	refreshToken string
}

// redeem exchanges rt for an access token for scope.
func (c *refreshCredential) redeem(ctx context.Context, rt, scope string) (redeemed, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.clientID},
		"refresh_token": {rt},
		"scope":         {withOfflineAccess(scope)},
	}
	body, err := postForm(ctx, c.http, c.tokenURL, form, c.now, rt)
	if err != nil {
		return redeemed{}, err
	}
	return decodeTokenAnswer(body, c.now())
}

// postForm POSTs form to an Entra endpoint (token, devicecode) and returns
// the body of its 200 answer; any other answer is a typed error
// (responseError) from which every string in secrets is removed.
func postForm(ctx context.Context, hc *http.Client, endpoint string, form url.Values, now func() time.Time, secrets ...string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &m365.Error{Op: opGetToken, Kind: m365.BadRequest, Reason: "building token request"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	sctx, sink := withSink(ctx, secrets...)
	resp, err := hc.Do(req.WithContext(sctx))
	if err != nil {
		return nil, m365.FromTransport(opGetToken, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, m365.FromTransport(opGetToken, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp, body, sink, now())
	}
	return body, nil
}

// decodeTokenAnswer reads {"access_token","expires_in","refresh_token"}.
func decodeTokenAnswer(body []byte, now time.Time) (redeemed, error) {
	var v struct {
		AccessToken  string `json:"access_token"`
		ExpiresIn    any    `json:"expires_in"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.AccessToken == "" {
		return redeemed{}, &m365.Error{Op: opGetToken, Kind: m365.Transient, StatusCode: http.StatusOK, Reason: "token answer holds no access_token"}
	}
	lifetime, ok := seconds(v.ExpiresIn)
	if !ok {
		return redeemed{}, &m365.Error{Op: opGetToken, Kind: m365.Transient, StatusCode: http.StatusOK, Reason: "token answer holds no valid expires_in"}
	}
	margin := min(refreshMargin, lifetime/2)
	return redeemed{
		token:        azcore.AccessToken{Token: v.AccessToken, ExpiresOn: now.Add(lifetime), RefreshOn: now.Add(lifetime - margin)},
		refreshToken: v.RefreshToken,
	}, nil
}

// maxTokenLifetime bounds the lifetime read from expires_in: Entra's access
// tokens live 60-90 minutes; a larger (or overflowing) value must not keep a
// token cached for ever.
const maxTokenLifetime = 24 * time.Hour

// seconds reads expires_in, a number or a numeric string, at most
// maxTokenLifetime. Zero, negative and non-numbers (NaN) are refused.
func seconds(v any) (time.Duration, bool) {
	var s float64
	switch x := v.(type) {
	case float64:
		s = x
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, false
		}
		s = f
	default:
		return 0, false
	}
	if !(s > 0) {
		return 0, false
	}
	return time.Duration(min(s, maxTokenLifetime.Seconds()) * float64(time.Second)), true
}

func withOfflineAccess(scope string) string {
	for _, s := range strings.Fields(scope) {
		if s == scopeOfflineAccess {
			return scope
		}
	}
	return scope + " " + scopeOfflineAccess
}

// isRefusedGrant reports whether Entra refused the refresh token itself.
func isRefusedGrant(err error) bool {
	e, ok := m365.AsError(err)
	return ok && e.Kind == m365.Unauthorized && e.Code == "invalid_grant"
}
