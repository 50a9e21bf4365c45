package auth

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// typedCredential wraps an azidentity credential: it bounds each call with a
// timeout and turns every failure into a typed, secret-free error.
//
// Concurrency: azidentity's confidential client holds a mutex around "read
// the token cache, else request a token", so concurrent GetToken calls for one
// credential send one request and the others are served from its cache.
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
// credential for m.
func (p *Provider) newAzidentityCredential(m Material, method Method) (azcore.TokenCredential, error) {
	co := p.clientOptions(m.TenantID)
	var (
		inner   azcore.TokenCredential
		secrets []string
		err     error
	)
	switch method {
	case MethodClientSecret:
		secrets = []string{m.ClientSecret}
		inner, err = azidentity.NewClientSecretCredential(m.TenantID, m.ClientID, m.ClientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	case MethodCertificate:
		var pc *parsedCertificate
		if pc, err = parseCertificate(m.CertificatePEM); err != nil {
			return nil, err
		}
		inner, err = azidentity.NewClientCertificateCredential(m.TenantID, m.ClientID, pc.chain, pc.key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	case MethodWorkloadIdentity:
		inner, err = azidentity.NewClientAssertionCredential(m.TenantID, m.ClientID, recordingAssertion(m.Assertion),
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	}
	if err != nil {
		return nil, invalid("%s: %v", method, err)
	}
	return &typedCredential{inner: inner, secrets: secrets, now: p.now, timeout: p.timeout}, nil
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
