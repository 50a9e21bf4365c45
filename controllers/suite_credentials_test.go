package controllers_test

import (
	"context"
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The credential sources that read the cluster (clustercreds.ServiceAccountTokens,
// clustercreds.SecretRefreshTokens) with internal/m365/auth against the
// tenant simulator and the suite's real kube-apiserver: workload identity
// through the TokenRequest API, delegated auth through a refresh-token Secret.
var _ = Describe("credential sources", func() {
	It("signs in with workload identity from a ServiceAccount token", func() {
		f := newCredFixture()
		ns, sa := credNamespace(), "m365-contoso"
		ctx := context.Background()
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa,
			Annotations: map[string]string{auth.WorkloadIdentityClientIDAnnotation: f.clientID}}})).To(Succeed())
		issuer, jwks := serviceAccountIssuer(env.Config)
		f.register(m365sim.App{ClientID: f.clientID, Permissions: []string{m365sim.PermPolicyReadWrite}, Federated: &m365sim.FederatedCredential{
			Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: auth.AudienceTokenExchange, JWKS: jwks}})
		tokens := clustercreds.ServiceAccountTokens(k8s)

		m := auth.Material{TenantID: f.tenant, ClientID: f.clientID, Assertion: tokens(ns, sa), AssertionKey: ns + "/" + sa}
		items, err := f.listProducts(f.credential(m))
		Expect(err).NotTo(HaveOccurred(), "listing products with workload identity")
		Expect(items).NotTo(BeEmpty())

		By("a token for another audience is refused")
		m = auth.Material{TenantID: f.tenant, ClientID: f.clientID, AssertionKey: ns + "/" + sa + "/other-audience",
			Assertion: func(ctx context.Context) (string, error) {
				return tokenWithAudience(ctx, k8s, ns, sa, "api://something-else")
			}}
		_, err = f.credential(m).GetToken(ctx, credScope)
		v := viewOf(err)
		Expect(v.Kind).To(Equal(m365.Unauthorized), "assertion for another audience: %v", err)
		Expect(v.Reason).To(HavePrefix("AADSTS700212: "))

		By("a missing ServiceAccount is the user's to fix, not a transient error")
		m = auth.Material{TenantID: f.tenant, ClientID: f.clientID, Assertion: tokens(ns, "nobody"), AssertionKey: ns + "/nobody"}
		_, err = f.credential(m).GetToken(ctx, credScope)
		Expect(cmp.Diff(errorView{Kind: m365.Unauthorized, Op: "get token", Code: "credential_unavailable", Reason: "service account token"}, viewOf(err))).To(BeEmpty())
	})

	It("redeems a delegated refresh token from a Secret and writes the rotated one back", func() {
		f := newCredFixture()
		ctx := context.Background()
		f.register(m365sim.App{ClientID: f.clientID})
		rt, err := sim.RegisterDelegatedUser(f.tenant, f.clientID, []string{m365sim.RoleBillingAdmin})
		Expect(err).NotTo(HaveOccurred())
		ns := credNamespace()
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "contoso-delegated"},
			Data: map[string][]byte{"refreshToken": []byte(rt), "note": []byte("kept")}}
		Expect(k8s.Create(ctx, secret)).To(Succeed())
		store := clustercreds.SecretRefreshTokens(k8s)(ns, "contoso-delegated", "refreshToken")
		m := auth.Material{TenantID: f.tenant, ClientID: f.clientID, RefreshTokens: store}

		items, err := f.listProducts(f.credential(m))
		Expect(err).NotTo(HaveOccurred(), "listing products as a delegated Billing Administrator")
		Expect(items).NotTo(BeEmpty())
		var stored corev1.Secret
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), &stored)).To(Succeed())
		rotated := string(stored.Data["refreshToken"])
		Expect(rotated).NotTo(BeEmpty(), "refresh token rotated")
		Expect(rotated).NotTo(Equal(rt), "refresh token rotated")
		Expect(string(stored.Data["note"])).To(Equal("kept"), "other keys kept")

		By("another replica (a fresh Provider) starts from the Secret: the token written back is the one the simulator honours now")
		other, err := auth.NewProvider(auth.Options{AuthorityHost: sim.Endpoints().AuthorityHost, HTTPClient: sim.HTTPClient()})
		Expect(err).NotTo(HaveOccurred())
		cred, err := other.Credential(m)
		Expect(err).NotTo(HaveOccurred())
		_, err = cred.GetToken(ctx, credScope)
		Expect(err).NotTo(HaveOccurred(), "redeeming the written-back refresh token")

		By("the Secret store refuses a stale version")
		_, version, err := store.Load(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), &stored)).To(Succeed())
		stored.Data["note"] = []byte("changed")
		Expect(k8s.Update(ctx, &stored)).To(Succeed())
		err = store.Save(ctx, "x", version)
		Expect(errors.Is(err, auth.ErrConflict)).To(BeTrue(), "Save with a stale version: %v, want ErrConflict", err)
	})

	It("reports a delegated user without an admin role as Forbidden", func() {
		f := newCredFixture()
		f.register(m365sim.App{ClientID: f.clientID})
		rt, err := sim.RegisterDelegatedUser(f.tenant, f.clientID, nil)
		Expect(err).NotTo(HaveOccurred())
		ns := credNamespace()
		Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "d"}, Data: map[string][]byte{"rt": []byte(rt)}})).To(Succeed())
		m := auth.Material{TenantID: f.tenant, ClientID: f.clientID, RefreshTokens: clustercreds.SecretRefreshTokens(k8s)(ns, "d", "rt")}
		_, err = f.listProducts(f.credential(m))
		Expect(m365.KindOf(err)).To(Equal(m365.Forbidden), "user without an admin role: %v", err)
	})
})

// credScope is the licensing API's token scope.
var credScope = policy.TokenRequestOptions{Scopes: []string{m365.LicensingScope}}

// credFixture is a fresh simulator tenant with a Provider and a licensing
// client pointed at it, sharing one gate as the controller's do.
type credFixture struct {
	tenant, clientID string
	provider         *auth.Provider
	licensing        *licensing.Client
}

func newCredFixture() *credFixture {
	GinkgoHelper()
	f := &credFixture{tenant: uuid.NewString(), clientID: uuid.NewString()}
	_, err := sim.AddTenant(m365sim.TenantConfig{ID: f.tenant})
	Expect(err).NotTo(HaveOccurred())
	ep := sim.Endpoints()
	gate := m365.NewGate(nil)
	f.provider, err = auth.NewProvider(auth.Options{AuthorityHost: ep.AuthorityHost, HTTPClient: sim.HTTPClient(), Gate: gate})
	Expect(err).NotTo(HaveOccurred())
	f.licensing, err = licensing.New(licensing.Options{Endpoint: ep.Licensing, HTTPClient: sim.HTTPClient(), Gate: gate})
	Expect(err).NotTo(HaveOccurred())
	return f
}

func (f *credFixture) register(app m365sim.App) {
	GinkgoHelper()
	Expect(sim.RegisterApp(f.tenant, app)).To(Succeed())
}

func (f *credFixture) credential(m auth.Material) azcore.TokenCredential {
	GinkgoHelper()
	c, err := f.provider.Credential(m)
	Expect(err).NotTo(HaveOccurred())
	return c
}

// listProducts calls the licensing API with cred, as the reconciler does.
func (f *credFixture) listProducts(cred azcore.TokenCredential) ([]licensing.Item, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items, _, err := f.licensing.For(f.tenant, cred).ListProducts(ctx)
	return items, err
}

// errorView is the part of an *m365.Error a user sees.
type errorView struct {
	Kind       m365.Kind
	Op         string
	StatusCode int
	Code       string
	Reason     string
}

func viewOf(err error) errorView {
	GinkgoHelper()
	e, ok := m365.AsError(err)
	Expect(ok).To(BeTrue(), "error %v (%T) is not an *m365.Error", err, err)
	return errorView{Kind: e.Kind, Op: e.Op, StatusCode: e.StatusCode, Code: e.Code, Reason: e.Reason}
}

// credNamespace creates a namespace for one spec.
func credNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "auth-"}}
	Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	return ns.Name
}

// serviceAccountIssuer reads the API server's service-account issuer and its
// JWKS, as a cloud identity provider would from the OIDC discovery documents.
func serviceAccountIssuer(cfg *rest.Config) (string, []byte) {
	GinkgoHelper()
	issuer, jwks, err := testsupport.ServiceAccountIssuer(cfg)
	Expect(err).NotTo(HaveOccurred())
	return issuer, jwks
}

// tokenWithAudience requests a service-account token for audience.
func tokenWithAudience(ctx context.Context, c client.Client, ns, sa, audience string) (string, error) {
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}}}
	if err := c.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}, tr); err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}
