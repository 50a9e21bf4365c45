package clustercreds

import (
	"context"
	"fmt"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// Loader reads the credential material of a policy's spec.auth from the
// cluster. Reader must read from the API server, not from a cache (the
// controller's API reader, or a client from client.New): a cached client
// would start a cluster-wide Secret informer.
type Loader struct {
	Reader client.Reader
	// Assertions requests ServiceAccount tokens (workload identity).
	Assertions AssertionSource
	// RefreshTokens opens the Secret-backed store of a delegated refresh token.
	RefreshTokens RefreshTokenStores
	// SharedReads, when set, lets concurrent reads of one Secret share one
	// GET: a partner's Secret serves hundreds of policies, and a fleet's
	// resync would otherwise read it once per policy within seconds. A read
	// still goes to the API server; one that joins a GET in flight sees the
	// Secret as of that GET, at most one round trip older than its own.
	SharedReads *singleflight.Group
}

// MissingError says the cluster lacks (or holds unusable) what spec.auth
// names: a person must create or fix it. Reason is the condition reason the
// controller reports (v1.ReasonSecretNotFound, ...). The message never holds
// a secret value.
type MissingError struct {
	Reason  string
	Message string
}

func (e *MissingError) Error() string { return e.Message }

func missing(reason, format string, args ...any) error {
	return &MissingError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Material collects, in namespace ns, the credential of the one auth method a
// sets, for tenantID. A missing Secret, key or ServiceAccount, or a
// ServiceAccount without the workload identity annotation, is a
// *MissingError; any other failure to read (a timeout, RBAC) is returned
// wrapped.
func (l Loader) Material(ctx context.Context, ns, tenantID string, a v1.Auth) (auth.Material, error) {
	m := auth.Material{TenantID: tenantID, ClientID: a.ClientID}
	switch {
	case a.ClientSecretRef != nil:
		v, err := l.secretKey(ctx, ns, a.ClientSecretRef.Name, a.ClientSecretRef.Key)
		m.ClientSecret = string(v)
		return m, err
	case a.ClientCertificateRef != nil:
		crt, err := l.secretKey(ctx, ns, a.ClientCertificateRef.Name, corev1.TLSCertKey)
		if err != nil {
			return m, err
		}
		key, err := l.secretKey(ctx, ns, a.ClientCertificateRef.Name, corev1.TLSPrivateKeyKey)
		if err != nil {
			return m, err
		}
		m.CertificatePEM = append(append(append([]byte{}, crt...), '\n'), key...)
		return m, nil
	case a.WorkloadIdentity != nil:
		name := a.WorkloadIdentity.ServiceAccountName
		if err := l.checkServiceAccount(ctx, ns, name, a.ClientID); err != nil {
			return m, err
		}
		m.Assertion = l.Assertions(ns, name)
		m.AssertionKey = ns + "/" + name
		return m, nil
	case a.RefreshTokenRef != nil:
		if _, err := l.secretKey(ctx, ns, a.RefreshTokenRef.Name, a.RefreshTokenRef.Key); err != nil {
			return m, err
		}
		m.RefreshTokens = l.RefreshTokens(ns, a.RefreshTokenRef.Name, a.RefreshTokenRef.Key)
		return m, nil
	}
	return m, missing(v1.ReasonInvalidCredentials, "spec.auth sets no method")
}

// secretKey returns one non-empty key of a Secret, or a *MissingError naming
// what is missing. The value never appears in the error.
func (l Loader) secretKey(ctx context.Context, ns, name, key string) ([]byte, error) {
	secret, err := l.readSecret(ctx, types.NamespacedName{Namespace: ns, Name: name})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, missing(v1.ReasonSecretNotFound, "Secret %s/%s not found", ns, name)
		}
		return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
	}
	v := secret.Data[key]
	if len(v) == 0 {
		return nil, missing(v1.ReasonSecretKeyNotFound, "Secret %s/%s has no key %q (or it is empty)", ns, name, key)
	}
	return v, nil
}

// readSecret reads a Secret from Reader, through SharedReads when set. The
// Secret returned may be shared with concurrent callers: read it, never
// change it.
func (l Loader) readSecret(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	get := func() (any, error) {
		secret := &corev1.Secret{}
		return secret, l.Reader.Get(ctx, key, secret)
	}
	if l.SharedReads == nil {
		secret, err := get()
		return secret.(*corev1.Secret), err
	}
	secret, err, _ := l.SharedReads.Do(key.String(), get)
	return secret.(*corev1.Secret), err
}

// checkServiceAccount requires the workload identity ServiceAccount to exist
// and to carry azure.workload.identity/client-id equal to clientID: its
// owner's opt-in to lend it to this app.
func (l Loader) checkServiceAccount(ctx context.Context, ns, name, clientID string) error {
	var sa corev1.ServiceAccount
	if err := l.Reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sa); err != nil {
		if apierrors.IsNotFound(err) {
			return missing(v1.ReasonServiceAccountNotFound, "ServiceAccount %s/%s not found", ns, name)
		}
		return fmt.Errorf("reading ServiceAccount %s/%s: %w", ns, name, err)
	}
	if got := sa.Annotations[auth.WorkloadIdentityClientIDAnnotation]; got != clientID {
		return missing(v1.ReasonServiceAccountNotAnnotated,
			"ServiceAccount %s/%s must carry the annotation %s: %s (found %q)", ns, name, auth.WorkloadIdentityClientIDAnnotation, clientID, got)
	}
	return nil
}
