package auth

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// typedCredential wraps an azidentity credential: it bounds each call with a
// timeout and turns every failure into a typed, secret-free error. Its
// caller (leanCredential) serializes the calls of a tenant.
type typedCredential struct {
	inner   azcore.TokenCredential
	secrets []string // static secrets of the material, for redaction
	now     func() time.Time
	timeout time.Duration
}

// GetToken returns a cached token or requests one from Entra.
func (c *typedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	callCtx, sink := withSink(ctx, c.secrets...)
	callCtx, cancel := context.WithTimeout(callCtx, c.timeout)
	defer cancel()
	tok, err := c.inner.GetToken(callCtx, opts)
	if err != nil {
		return azcore.AccessToken{}, tokenError(ctx, err, sink, c.now())
	}
	return tok, nil
}

// clientOptions are the azcore options every azidentity credential gets: the
// authority, the gated transport, and no retries (the reconciler retries with
// backoff and honours Retry-After through the gate). Instance discovery is
// off: the authority is whatever --authority-host names.
func (p *Provider) clientOptions(tenant string) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: p.authority + "/"},
		Transport: p.httpClientFor(tenant),
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// newAzidentityCredential builds a secret, certificate or assertion
// credential for m: a leanCredential over azidentity, which builds the
// azidentity credential only to acquire a token.
func (p *Provider) newAzidentityCredential(m Material, method Method) (azcore.TokenCredential, error) {
	co := p.clientOptions(m.TenantID)
	var (
		build   func() (azcore.TokenCredential, error)
		secrets []string
	)
	switch method {
	case MethodClientSecret:
		secrets = []string{m.ClientSecret}
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewClientSecretCredential(m.TenantID, m.ClientID, m.ClientSecret,
				&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		}
	case MethodCertificate:
		pc, err := parseCertificate(m.CertificatePEM)
		if err != nil {
			return nil, err
		}
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewClientCertificateCredential(m.TenantID, m.ClientID, pc.chain, pc.key,
				&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		}
	case MethodWorkloadIdentity:
		build = func() (azcore.TokenCredential, error) {
			return azidentity.NewClientAssertionCredential(m.TenantID, m.ClientID, recordingAssertion(m.Assertion),
				&azidentity.ClientAssertionCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		}
	}
	if _, err := build(); err != nil { // options are checked once, up front
		return nil, invalid("%s: %v", method, err)
	}
	return &leanCredential{now: p.now, tokens: map[string]azcore.AccessToken{}, build: func() (azcore.TokenCredential, error) {
		inner, err := build()
		if err != nil {
			return nil, invalid("%s: %v", method, err)
		}
		return &typedCredential{inner: inner, secrets: secrets, now: p.now, timeout: p.timeout}, nil
	}}, nil
}

// leanCredential keeps a tenant's access tokens, not the azidentity
// credential that acquired them: that one (an MSAL client with its own
// pipeline, token store and Entra metadata) is about 10 KiB, a hundred MiB
// of a 10,000-tenant replica's heap (make bench), for a token used an hour.
// It is built for each acquisition and dropped after, so Entra sees what it
// saw before: its metadata read, then the token request, once per tenant,
// resource and token lifetime.
//
// Concurrency: one acquisition at a time per tenant (mu), so concurrent
// GetToken calls send one request and the others take its token, as
// azidentity's own lock did.
type leanCredential struct {
	build  func() (azcore.TokenCredential, error)
	now    func() time.Time
	mu     sync.Mutex
	tokens map[string]azcore.AccessToken // by scope
}

// tokenRenewal is how long before its expiry a token is renewed when Entra
// suggests no refresh time: MSAL's own margin.
const tokenRenewal = 5 * time.Minute

// GetToken returns the scope's token unless it is due for renewal or the
// caller passes a claims challenge (a resource's 401 asking for a token with
// those claims: the cached one is what it refused), else acquires one with a
// fresh azidentity credential, which sends the claims to Entra.
func (c *leanCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	scope := strings.Join(opts.Scopes, " ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok, ok := c.tokens[scope]; ok && opts.Claims == "" && c.now().Before(renewAt(tok)) {
		return tok, nil
	}
	inner, err := c.build()
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := inner.GetToken(ctx, opts)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	c.tokens[scope] = tok
	return tok, nil
}

// renewAt is when tok is due for renewal: Entra's suggested refresh time
// (refresh_in) when it gave one, else tokenRenewal before expiry.
func renewAt(tok azcore.AccessToken) time.Time {
	if !tok.RefreshOn.IsZero() && tok.RefreshOn.Before(tok.ExpiresOn) {
		return tok.RefreshOn
	}
	return tok.ExpiresOn.Add(-tokenRenewal)
}

// recordingAssertion wraps get so that the assertion it returns is redacted
// from errors and its failure reaches the calling GetToken intact.
func recordingAssertion(get func(context.Context) (string, error)) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		a, err := get(ctx)
		if err != nil {
			sinkFrom(ctx).setAssertionErr(err)
			return "", err
		}
		sinkFrom(ctx).addSecret(a)
		return a, nil
	}
}
