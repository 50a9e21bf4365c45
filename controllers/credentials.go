package controllers

import (
	"context"
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// loadCredentials reads the credential material the policy names, through the
// uncached API reader, and turns it into a token credential. A missing
// Secret, key or ServiceAccount, an unusable certificate or a ServiceAccount
// without the workload identity annotation stalls the policy with that exact
// cause; nothing is sent to Microsoft. Then it connects the run's clients to
// the tenant (PolicyAPI.For, DirectoryAPI.For).
//
// Sets status.certificateNotAfter for certificate auth.
func (r *TenantPurchasePolicyReconciler) loadCredentials(ctx context.Context, s *syncState) error {
	cred, notAfter, err := r.tokenCredential(ctx, s.policy.Namespace, s.policy.Spec.TenantID, s.policy.Spec.Auth)
	if notAfter != nil {
		s.policy.Status.CertificateNotAfter = &metav1.Time{Time: *notAfter}
	}
	if err != nil {
		return err
	}
	s.cred = cred
	s.policies = r.Policies.For(tenantKey(s.policy), cred)
	s.directory = r.Directory.For(tenantKey(s.policy), cred)
	if r.Settings != nil {
		s.settings = r.Settings.For(tenantKey(s.policy), cred)
	}
	return nil
}

// tokenCredential turns auth, read in namespace ns, into a token credential
// for tenantID; with certificate auth it also returns the certificate's
// expiry. Policies and policy sets (discovery) authenticate through it, so
// both read Secrets and ServiceAccounts the same way and stall with the same
// reasons.
func (r *TenantPurchasePolicyReconciler) tokenCredential(ctx context.Context, ns, tenantID string, a v1.Auth) (azcore.TokenCredential, *time.Time, error) {
	m, err := r.material(ctx, ns, tenantID, a)
	if err != nil {
		return nil, nil, err
	}
	var notAfter *time.Time
	if m.CertificatePEM != nil {
		t, err := auth.CertificateNotAfter(m.CertificatePEM)
		if err != nil {
			return nil, nil, stalled(v1.ReasonInvalidCertificate, "Secret %s/%s: %v", ns, a.ClientCertificateRef.Name, err)
		}
		notAfter = &t
	}
	cred, err := r.Credentials.Credential(m)
	var invalid *auth.InvalidCredentialError
	if errors.As(err, &invalid) {
		return nil, notAfter, stalled(v1.ReasonInvalidCredentials, "%s", invalid.Error())
	}
	return cred, notAfter, err
}

// checkRefreshToken runs after every other step: when Entra rotated the
// delegated refresh token but its Secret refused the new one (an immutable
// Secret, a denied write), the run is Stalled with the Secret and the cause.
// Nothing is redeemed again meanwhile: the access token obtained keeps
// serving (it was used for this run) until it nears expiry, and each run
// tries the write once more (auth.UnsavedRefreshToken). A write that failed
// for a passing reason is retried with backoff.
//
// Sets Stalled reason RefreshTokenNotSaved.
func (r *TenantPurchasePolicyReconciler) checkRefreshToken(ctx context.Context, s *syncState) error {
	return refreshTokenSaved(ctx, s.cred)
}

// refreshTokenSaved is checkRefreshToken for any credential (a policy's, or
// a set's discovery credential).
func refreshTokenSaved(ctx context.Context, cred azcore.TokenCredential) error {
	err := auth.UnsavedRefreshToken(ctx, cred)
	var notSaved *auth.RefreshTokenNotSavedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notSaved) && notSaved.Permanent():
		return stalled(v1.ReasonRefreshTokenNotSaved, "%s; the access token obtained is used until it expires: let the controller patch the Secret, or replace it (a new sign-in)", notSaved.Error())
	}
	return err
}

// material collects the credential of the one auth method a sets, read in
// namespace ns, for tenantID (clustercreds.Loader, which the command line
// shares); what the cluster lacks stalls with that exact cause.
func (r *TenantPurchasePolicyReconciler) material(ctx context.Context, ns, tenantID string, a v1.Auth) (auth.Material, error) {
	l := clustercreds.Loader{Reader: r.APIReader, Assertions: r.Assertions, RefreshTokens: r.RefreshTokens, SharedReads: &r.secretReads}
	m, err := l.Material(ctx, ns, canonicalTenantID(tenantID), a)
	var miss *clustercreds.MissingError
	if errors.As(err, &miss) {
		return m, stalled(miss.Reason, "%s", miss.Message)
	}
	return m, err
}
