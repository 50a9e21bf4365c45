package clustercreds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

func TestKubeSourceError(t *testing.T) {
	sa := schema.GroupResource{Resource: "serviceaccounts"}
	cases := map[string]struct {
		reason      string
		err         error
		unavailable bool
	}{
		"not found":    {"a missing ServiceAccount or Secret is the user's to create", apierrors.NewNotFound(sa, "m365-contoso"), true},
		"forbidden":    {"RBAC that does not let the controller read it is the user's to fix", apierrors.NewForbidden(sa, "m365-contoso", errors.New("no")), true},
		"unauthorized": {"the controller's own credential refused", apierrors.NewUnauthorized("expired"), true},
		"invalid":      {"a request the API server refuses as invalid will not pass by retrying", apierrors.NewInvalid(schema.GroupKind{Kind: "TokenRequest"}, "x", nil), true},
		"bad request":  {"likewise a bad request", apierrors.NewBadRequest("audience"), true},
		"timeout":      {"a slow API server is transient: retried", apierrors.NewTimeoutError("slow", 1), false},
		"internal":     {"a 500 is transient", apierrors.NewInternalError(errors.New("etcd")), false},
		"plain":        {"a connection error is transient", errors.New("connection refused"), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			wrapped := fmt.Errorf("requesting a token for service account m365/m365-contoso: %w", tc.err)
			got := kubeSourceError(wrapped)
			if auth.IsUnavailable(got) != tc.unavailable {
				t.Errorf("%s: unavailable = %v, want %v", tc.reason, auth.IsUnavailable(got), tc.unavailable)
			}
			if got.Error() != wrapped.Error() || !errors.Is(got, tc.err) {
				t.Errorf("%s: the Kubernetes error must stay as it is and reachable, got %q", tc.reason, got)
			}
		})
	}
}

// TestSecretStoreSaveRefused: a write the API server refuses for good
// (RBAC forbids the patch, the Secret is immutable) is marked Unavailable,
// so the credential reports RefreshTokenNotSaved instead of retrying as
// transient; a conflict stays auth.ErrConflict and a 500 stays transient.
func TestSecretStoreSaveRefused(t *testing.T) {
	secrets := schema.GroupResource{Resource: "secrets"}
	cases := map[string]struct {
		err         error
		unavailable bool
		conflict    bool
	}{
		"forbidden": {err: apierrors.NewForbidden(secrets, "delegated", errors.New(`cannot patch resource "secrets"`)), unavailable: true},
		"immutable": {err: apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "delegated",
			field.ErrorList{field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set")}), unavailable: true},
		"conflict": {err: apierrors.NewConflict(secrets, "delegated", errors.New("changed")), conflict: true},
		"internal": {err: apierrors.NewInternalError(errors.New("etcd"))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "m365", Name: "delegated"}, Data: map[string][]byte{"rt": []byte("old")}}
			c := fake.NewClientBuilder().WithObjects(secret).WithInterceptorFuncs(interceptor.Funcs{
				Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
					return tc.err
				},
			}).Build()
			store := SecretRefreshTokens(c)("m365", "delegated", "rt")
			_, version, err := store.Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			err = store.Save(context.Background(), "rotated-secret-value", version)
			if auth.IsUnavailable(err) != tc.unavailable || errors.Is(err, auth.ErrConflict) != tc.conflict || !errors.Is(err, tc.err) {
				t.Errorf("Save: %v; want unavailable=%v conflict=%v, the API error reachable", err, tc.unavailable, tc.conflict)
			}
			if strings.Contains(err.Error(), "rotated-secret-value") {
				t.Errorf("error %q shows the token", err)
			}
		})
	}
}
