// Package clustercreds reads the credential material a TenantPurchasePolicy
// names from the cluster: its Secrets, the ServiceAccount tokens of workload
// identity and the Secret that keeps a delegated refresh token. The controller
// and the command line (kubectl tpp --from-policy, login) use it alike.
package clustercreds

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// Credential material the cluster holds for internal/m365/auth, which knows
// no Kubernetes: ServiceAccount tokens for workload identity and the Secret
// that keeps a delegated refresh token. Kubernetes errors a person must fix
// are marked auth.Unavailable here, so the credential reports them as refused
// (Stalled) rather than retrying.

// AssertionSource returns a function that requests a token of the named
// ServiceAccount for workload identity federation.
type AssertionSource func(namespace, serviceAccount string) func(ctx context.Context) (string, error)

// RefreshTokenStores returns the store of a delegated refresh token kept in a
// Secret key; the store writes rotated tokens back with an optimistic lock.
type RefreshTokenStores func(namespace, name, key string) auth.RefreshTokenStore

const (
	// serviceAccountTokenLifetime is the expiry asked of the TokenRequest API
	// (its minimum); the token is used once, at once.
	serviceAccountTokenLifetime int64 = 600
	// kubeCallTimeout bounds one call to the Kubernetes API.
	kubeCallTimeout = 10 * time.Second
	// tokenSubresource is the ServiceAccount subresource of TokenRequest.
	tokenSubresource = "token"
)

// ServiceAccountTokens is the AssertionSource of workload identity: each
// assertion is a fresh token of namespace/serviceAccount from the TokenRequest
// API (through c), with audience auth.AudienceTokenExchange and a 10 minute
// expiry.
func ServiceAccountTokens(c client.Client) AssertionSource {
	return func(namespace, serviceAccount string) func(ctx context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
			defer cancel()
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceAccount}}
			lifetime := serviceAccountTokenLifetime
			tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				Audiences:         []string{auth.AudienceTokenExchange},
				ExpirationSeconds: &lifetime,
			}}
			if err := c.SubResource(tokenSubresource).Create(ctx, sa, tr); err != nil {
				return "", kubeSourceError(fmt.Errorf("requesting a token for service account %s/%s: %w", namespace, serviceAccount, err))
			}
			if tr.Status.Token == "" {
				return "", fmt.Errorf("requesting a token for service account %s/%s: empty token", namespace, serviceAccount)
			}
			return tr.Status.Token, nil
		}
	}
}

// SecretRefreshTokens keeps each delegated refresh token under key in the
// Secret namespace/name. c must read from the API server, not from a cache
// (a client from client.New, not the manager's cached client), so a version
// is never stale by construction. Save is a JSON merge patch of that one key
// with a resourceVersion precondition: a concurrent change makes it fail with
// auth.ErrConflict (and the API server's Conflict).
func SecretRefreshTokens(c client.Client) RefreshTokenStores {
	return func(namespace, name, key string) auth.RefreshTokenStore {
		return &secretStore{c: c, namespace: namespace, name: name, key: key}
	}
}

type secretStore struct {
	c                    client.Client
	namespace, name, key string
}

// Key is "namespace/name/key".
func (s *secretStore) Key() string { return s.namespace + "/" + s.name + "/" + s.key }

// Load reads the token and the Secret's resourceVersion.
func (s *secretStore) Load(ctx context.Context) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	var sec corev1.Secret
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: s.name}, &sec); err != nil {
		return "", "", kubeSourceError(fmt.Errorf("reading secret %s/%s: %w", s.namespace, s.name, err))
	}
	v := sec.Data[s.key]
	if len(v) == 0 {
		return "", "", fmt.Errorf("secret %s/%s key %q: %w", s.namespace, s.name, s.key, auth.ErrNoRefreshToken)
	}
	return string(v), sec.ResourceVersion, nil
}

// Save writes token if the Secret is still at version. A write the API
// server refuses for good (forbidden by RBAC, an immutable Secret, a Secret
// that is gone) is marked auth.Unavailable, so the credential reports the
// refresh token as not saved for a person to fix.
func (s *secretStore) Save(ctx context.Context, token, version string) error {
	ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
	defer cancel()
	base := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name, ResourceVersion: version}}
	changed := base.DeepCopy()
	changed.Data = map[string][]byte{s.key: []byte(token)}
	err := s.c.Patch(ctx, changed, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	switch {
	case apierrors.IsConflict(err):
		return fmt.Errorf("saving secret %s/%s: %w: %w", s.namespace, s.name, auth.ErrConflict, err)
	case err != nil:
		return kubeSourceError(fmt.Errorf("saving secret %s/%s: %w", s.namespace, s.name, err))
	}
	return nil
}

// kubeSourceError marks a Kubernetes error a person must fix (the object is
// missing, the controller may not read it, the request was refused as
// invalid) as auth.Unavailable; anything else (a timeout, a 5xx) stays
// transient.
func kubeSourceError(err error) error {
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return auth.Unavailable(err)
	}
	return err
}
