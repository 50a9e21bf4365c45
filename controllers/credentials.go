package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
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

// material collects the credential of the one method auth sets.
func (r *TenantPurchasePolicyReconciler) material(ctx context.Context, ns, tenantID string, a v1.Auth) (auth.Material, error) {
	m := auth.Material{TenantID: canonicalTenantID(tenantID), ClientID: a.ClientID}
	switch {
	case a.ClientSecretRef != nil:
		v, err := r.secretKey(ctx, ns, a.ClientSecretRef.Name, a.ClientSecretRef.Key)
		m.ClientSecret = string(v)
		return m, err
	case a.ClientCertificateRef != nil:
		crt, err := r.secretKey(ctx, ns, a.ClientCertificateRef.Name, corev1.TLSCertKey)
		if err != nil {
			return m, err
		}
		key, err := r.secretKey(ctx, ns, a.ClientCertificateRef.Name, corev1.TLSPrivateKeyKey)
		if err != nil {
			return m, err
		}
		m.CertificatePEM = append(append(append([]byte{}, crt...), '\n'), key...)
		return m, nil
	case a.WorkloadIdentity != nil:
		name := a.WorkloadIdentity.ServiceAccountName
		if err := r.checkServiceAccount(ctx, ns, name, a.ClientID); err != nil {
			return m, err
		}
		m.Assertion = r.Assertions(ns, name)
		m.AssertionKey = ns + "/" + name
		return m, nil
	case a.RefreshTokenRef != nil:
		if _, err := r.secretKey(ctx, ns, a.RefreshTokenRef.Name, a.RefreshTokenRef.Key); err != nil {
			return m, err
		}
		m.RefreshTokens = r.RefreshTokens(ns, a.RefreshTokenRef.Name, a.RefreshTokenRef.Key)
		return m, nil
	}
	return m, stalled(v1.ReasonInvalidCredentials, "spec.auth sets no method")
}

// secretKey returns one non-empty key of a Secret, or a stalledError naming
// what is missing. The value never appears in the error.
func (r *TenantPurchasePolicyReconciler) secretKey(ctx context.Context, ns, name, key string) ([]byte, error) {
	var secret corev1.Secret
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, stalled(v1.ReasonSecretNotFound, "Secret %s/%s not found", ns, name)
		}
		return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
	}
	v := secret.Data[key]
	if len(v) == 0 {
		return nil, stalled(v1.ReasonSecretKeyNotFound, "Secret %s/%s has no key %q (or it is empty)", ns, name, key)
	}
	return v, nil
}

// checkServiceAccount requires the workload identity ServiceAccount to exist
// and to carry azure.workload.identity/client-id equal to clientID: its
// owner's opt-in to lend it to this app.
func (r *TenantPurchasePolicyReconciler) checkServiceAccount(ctx context.Context, ns, name, clientID string) error {
	var sa corev1.ServiceAccount
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return stalled(v1.ReasonServiceAccountNotFound, "ServiceAccount %s/%s not found", ns, name)
		}
		return fmt.Errorf("reading ServiceAccount %s/%s: %w", ns, name, err)
	}
	if got := sa.Annotations[auth.WorkloadIdentityClientIDAnnotation]; got != clientID {
		return stalled(v1.ReasonServiceAccountNotAnnotated,
			"ServiceAccount %s/%s must carry the annotation %s: %s (found %q)", ns, name, auth.WorkloadIdentityClientIDAnnotation, clientID, got)
	}
	return nil
}
