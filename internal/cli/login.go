package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// login signs a delegated admin in with the device code flow and keeps the
// refresh token in a Secret, ready for a policy's auth.refreshTokenRef. The
// token is never printed.

// commerceModuleClientID is the public client of Microsoft's MSCommerce
// PowerShell module, which every tenant accepts for a delegated sign-in.
const commerceModuleClientID = "3d5cffa9-04da-4657-8cab-c7f074657cad"

type loginOptions struct {
	tenant, clientID, secret, key string
}

func (a *app) loginCommand() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login --tenant TENANT --secret NAMESPACE/NAME",
		Short: "Sign in a Billing or Global Administrator (device code) and store the refresh token in a Secret",
		Long: "login runs Entra's device code sign-in for the licensing API (with offline_access), then writes the\n" +
			"refresh token into the Secret's key (created, or that key updated), never printing it. It then\n" +
			"redeems it once through the Secret exactly as the controller will, and lists the tenant's products\n" +
			"to prove the signed-in user may use the licensing API. Use the Secret in auth.refreshTokenRef.",
		Example: "  kubectl tpp login --tenant $TENANT --secret m365/contoso-delegated",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.login(cmd.Context(), o) },
	}
	cmd.Flags().StringVar(&o.tenant, "tenant", "", "Entra tenant (directory) ID to sign in to (for a partner: the customer's).")
	cmd.Flags().StringVar(&o.clientID, "client-id", commerceModuleClientID, "Public client to sign in with (default: Microsoft's commerce module).")
	cmd.Flags().StringVar(&o.secret, "secret", "", "NAMESPACE/NAME of the Secret that keeps the refresh token.")
	cmd.Flags().StringVar(&o.key, "key", "refreshToken", "Key of the Secret that holds the refresh token.")
	a.ms.bind(cmd.Flags())
	return cmd
}

func (a *app) login(ctx context.Context, o loginOptions) error {
	ns, name, ok := strings.Cut(o.secret, "/")
	switch {
	case o.tenant == "":
		return usageError("--tenant is required")
	case !ok || ns == "" || name == "":
		return usageError("--secret wants NAMESPACE/NAME, got %q", o.secret)
	case o.key == "":
		return usageError("--key must not be empty")
	}
	tenant := strings.ToLower(o.tenant)
	c, err := a.kube.client()
	if err != nil {
		return err
	}
	// Fail before the user signs in when the Secret cannot be read.
	var existing corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &existing); err != nil && !apierrors.IsNotFound(err) {
		return &clusterError{what: "reading Secret " + o.secret, err: err}
	}
	ms, err := a.ms.connect()
	if err != nil {
		return err
	}
	res, err := ms.creds.SignInWithDeviceCode(ctx, tenant, o.clientID, []string{m365.LicensingScope}, func(p auth.DeviceCodePrompt) {
		fmt.Fprintln(a.streams.Err, p.Message)
		fmt.Fprintf(a.streams.Err, "Waiting for the sign-in (the code expires at %s)...\n", p.ExpiresAt.Local().Format("15:04:05"))
	})
	if err != nil {
		return err
	}
	if err := saveRefreshToken(ctx, c, ns, name, o.key, res.RefreshToken); err != nil {
		return err
	}
	fmt.Fprintf(a.streams.Out, "Signed in. The refresh token is in Secret %s, key %s (not shown).\n", o.secret, o.key)
	// Redeem it once through the Secret, as the controller will (the rotated
	// token goes back to the Secret), and prove the role.
	store := clustercreds.SecretRefreshTokens(c)(ns, name, o.key)
	tc, err := ms.creds.Credential(auth.Material{TenantID: tenant, ClientID: o.clientID, RefreshTokens: store})
	if err != nil {
		return err
	}
	items, _, err := ms.licensing.For(tenant, tc).ListProducts(ctx)
	if err != nil {
		if e, ok := m365.AsError(err); ok {
			return fmt.Errorf("the refresh token is stored, but the licensing API refused the signed-in user: %s", explainMicrosoft(e, true))
		}
		return err
	}
	fmt.Fprintf(a.streams.Out, "Verified: the licensing API lists %d products for the signed-in user.\nUse it in a TenantPurchasePolicy in namespace %s:\n", len(items), ns)
	fmt.Fprintf(a.streams.Out, "  auth:\n    clientID: %s\n    refreshTokenRef: {name: %s, key: %s}\n", o.clientID, name, o.key)
	return nil
}

// saveRefreshToken creates the Secret with the token under key, or sets that
// one key of an existing Secret (a merge patch: other keys stay).
func saveRefreshToken(ctx context.Context, c client.Client, ns, name, key, token string) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "kubectl-tpp"}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{key: []byte(token)},
	}
	err := c.Create(ctx, sec)
	if apierrors.IsAlreadyExists(err) {
		patch, _ := json.Marshal(map[string]any{"data": map[string][]byte{key: []byte(token)}})
		err = c.Patch(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.RawPatch(types.MergePatchType, patch))
	}
	if err != nil {
		return &clusterError{what: "writing the refresh token to Secret " + ns + "/" + name, err: err}
	}
	return nil
}
