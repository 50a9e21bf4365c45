package controllers

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
