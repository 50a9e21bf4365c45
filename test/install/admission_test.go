package install

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// audienceTokenExchange is the only audience the controller requests.
const audienceTokenExchange = "api://AzureADTokenExchange"

// policyActiveTimeout bounds the wait for a new ValidatingAdmissionPolicy to
// be enforced (the API server compiles it asynchronously).
const policyActiveTimeout = 30 * time.Second

// TestTokenAudiencePolicy installs each cluster-mode source for real and
// requests service-account tokens as its controller (impersonated, so with
// exactly its RBAC and through admission): another audience is denied by
// the ValidatingAdmissionPolicy, api://AzureADTokenExchange is allowed, and
// other users are not affected.
func TestTokenAudiencePolicy(t *testing.T) {
	for i, name := range []string{"kustomize build config/default", "helm template (default values)"} {
		s := SourceNamed(name)
		t.Run(name, func(t *testing.T) {
			ctx := testContext(t)
			ns := fmt.Sprintf("workload-identity-%d", i)
			if err := EnsureNamespaces(ctx, admin, s.Namespace, ns); err != nil {
				t.Fatal(err)
			}
			if err := Apply(ctx, admin, mustRender(t, s), false); err != nil {
				t.Fatal(err)
			}
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "m365-contoso", Namespace: ns}}
			if err := admin.Create(ctx, sa); err != nil {
				t.Fatal(err)
			}
			asController, err := NewClient(Impersonating(apiConfig, s.Username()))
			if err != nil {
				t.Fatal(err)
			}

			err = waitForDenial(ctx, asController, sa, "https://kubernetes.default.svc")
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "may only request service-account tokens for the audience "+audienceTokenExchange) {
				t.Fatalf("the controller asking for another audience: got %v, want Forbidden by the token-audience policy", err)
			}
			if err := requestToken(ctx, asController, sa, audienceTokenExchange, "https://kubernetes.default.svc"); err == nil {
				t.Error("a token for two audiences, one of them another service's, was issued to the controller")
			}
			if err := requestToken(ctx, asController, sa, audienceTokenExchange); err != nil {
				t.Errorf("the controller asking for %s: %v", audienceTokenExchange, err)
			}
			if err := requestToken(ctx, admin, sa, "https://kubernetes.default.svc"); err != nil {
				t.Errorf("another user (the administrator) asking for another audience must not be affected: %v", err)
			}
		})
	}
}

// waitForDenial requests a token for audience until the policy denies it
// (it is enforced shortly after it is created) and returns the denial.
func waitForDenial(ctx context.Context, c client.Client, sa *corev1.ServiceAccount, audience string) error {
	var last error
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, policyActiveTimeout, true, func(ctx context.Context) (bool, error) {
		last = requestToken(ctx, c, sa, audience)
		return last != nil, nil
	})
	return last
}

func requestToken(ctx context.Context, c client.Client, sa *corev1.ServiceAccount, audiences ...string) error {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences}}
	return c.SubResource("token").Create(ctx, sa, tr)
}
