package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// credentialFlags are the credential flags of export, plan and doctor.
type credentialFlags struct {
	tenant, clientID                                  string
	secretFile, secretEnv, certFile, refreshTokenFile string
	fromPolicy                                        string
}

func (c *credentialFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.tenant, "tenant", "", "Entra tenant (directory) ID of the Microsoft 365 tenant.")
	fs.StringVar(&c.clientID, "client-id", "", "Application (client) ID of the Entra app, or the public client of a delegated sign-in.")
	fs.StringVar(&c.secretFile, "client-secret-file", "", "File holding the app's client secret.")
	fs.StringVar(&c.secretEnv, "client-secret-env", "", "Environment variable holding the app's client secret.")
	fs.StringVar(&c.certFile, "certificate-file", "", "PEM file holding the app's certificate and its unencrypted private key.")
	fs.StringVar(&c.refreshTokenFile, "refresh-token-file", "", "File holding a delegated refresh token (rotated tokens are written back to it).")
	fs.StringVar(&c.fromPolicy, "from-policy", "", "NAMESPACE/NAME of a TenantPurchasePolicy: use its tenant and auth, reading its Secret through the current kubeconfig.")
}

// endpointFlags say where Microsoft is, as the controller's flags do.
type endpointFlags struct {
	endpoints m365.Endpoints
	caFile    string
	timeout   time.Duration
}

func (e *endpointFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&e.endpoints.AuthorityHost, "authority-host", m365.PublicAuthorityHost, "Entra ID authority origin (https://host[:port]).")
	fs.StringVar(&e.endpoints.Licensing, "licensing-endpoint", m365.PublicLicensing, "Licensing (self-service purchase policy) API origin.")
	fs.StringVar(&e.endpoints.Graph, "graph-endpoint", m365.PublicGraph, "Microsoft Graph origin.")
	fs.StringVar(&e.caFile, "ca-file", "", "PEM file of extra CA certificates trusted for the endpoints (added to the system pool).")
	fs.DurationVar(&e.timeout, "call-timeout", m365.DefaultCallTimeout, "Timeout of one call to Microsoft.")
}

// microsoft is the controller's clients, wired as controllers.NewReconciler
// wires them: one not-before gate shared by the token provider and both APIs.
type microsoft struct {
	creds     *auth.Provider
	licensing *licensing.Client
	graph     *graph.Client
}

func (e *endpointFlags) connect() (*microsoft, error) {
	if err := e.endpoints.Validate(); err != nil {
		return nil, err
	}
	hc, err := m365.NewHTTPClient(e.caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	gate := m365.NewGate(nil)
	creds, err := auth.NewProvider(auth.Options{AuthorityHost: e.endpoints.AuthorityHost, HTTPClient: hc, Gate: gate, CallTimeout: e.timeout})
	if err != nil {
		return nil, err
	}
	lic, err := licensing.New(licensing.Options{Endpoint: e.endpoints.Licensing, HTTPClient: hc, Gate: gate, Timeout: e.timeout})
	if err != nil {
		return nil, err
	}
	dir, err := graph.New(graph.Options{Endpoint: e.endpoints.Graph, HTTPClient: hc, Gate: gate, Timeout: e.timeout})
	if err != nil {
		return nil, err
	}
	return &microsoft{creds: creds, licensing: lic, graph: dir}, nil
}

// kubeFlags are kubectl's kubeconfig flags.
type kubeFlags struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
}

func (k *kubeFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&k.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	clientcmd.BindOverrideFlags(&k.overrides, fs, clientcmd.RecommendedConfigOverrideFlags(""))
}

// config is the client configuration of the current kubeconfig and flags.
func (k *kubeFlags) config() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &k.overrides)
}

// namespace is the namespace of -n or the kubeconfig context ("default").
func (k *kubeFlags) namespace() string {
	ns, _, err := k.config().Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// client returns an uncached client (with watch) of the cluster.
func (k *kubeFlags) client() (client.WithWatch, error) {
	cfg, err := k.config().ClientConfig()
	if err != nil {
		return nil, &clusterError{what: "reading the kubeconfig", err: err}
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, &clusterError{what: "connecting to the cluster", err: err}
	}
	return c, nil
}

// credential is the credential material a command authenticates with, and
// what to say about it.
type credential struct {
	material auth.Material
	// method names it for people ("client secret", ...).
	method string
	// delegated: a user's refresh token rather than an application.
	delegated bool
	// policy is the --from-policy object, if any.
	policy *v1.TenantPurchasePolicy
}

// load returns the credential of the flags, for tenant (the flags' --tenant,
// or the policy's, when tenant is empty).
func (a *app) loadCredential(ctx context.Context, tenant string) (*credential, error) {
	c := a.creds
	if c.fromPolicy != "" {
		return a.policyCredential(ctx, tenant)
	}
	if tenant == "" {
		tenant = c.tenant
	}
	if tenant == "" {
		return nil, usageError("--tenant is required (or --from-policy NAMESPACE/NAME)")
	}
	if c.clientID == "" {
		return nil, usageError("--client-id is required with --client-secret-file, --client-secret-env, --certificate-file or --refresh-token-file")
	}
	cred := &credential{material: auth.Material{TenantID: strings.ToLower(tenant), ClientID: c.clientID}}
	var set []string
	if c.secretFile != "" {
		v, err := readSecretFile("--client-secret-file", c.secretFile)
		if err != nil {
			return nil, err
		}
		cred.material.ClientSecret, cred.method, set = v, "client secret", append(set, "--client-secret-file")
	}
	if c.secretEnv != "" {
		v := strings.TrimSpace(os.Getenv(c.secretEnv))
		if v == "" {
			return nil, usageError("--client-secret-env %s: the variable is empty or not set", c.secretEnv)
		}
		cred.material.ClientSecret, cred.method, set = v, "client secret", append(set, "--client-secret-env")
	}
	if c.certFile != "" {
		pem, err := os.ReadFile(c.certFile)
		if err != nil {
			return nil, usageError("--certificate-file: %v", err)
		}
		cred.material.CertificatePEM, cred.method, set = pem, "client certificate", append(set, "--certificate-file")
	}
	if c.refreshTokenFile != "" {
		cred.material.RefreshTokens = fileRefreshTokens(c.refreshTokenFile)
		cred.method, cred.delegated, set = "delegated refresh token", true, append(set, "--refresh-token-file")
	}
	if len(set) != 1 {
		return nil, usageError("set exactly one of --client-secret-file, --client-secret-env, --certificate-file, --refresh-token-file (or --from-policy); got %d", len(set))
	}
	return cred, nil
}

// policyCredential reads --from-policy and its credential material through
// the kubeconfig, with the controller's loader; rotated refresh tokens go
// back to the policy's Secret as the controller writes them.
func (a *app) policyCredential(ctx context.Context, tenant string) (*credential, error) {
	ns, name, ok := strings.Cut(a.creds.fromPolicy, "/")
	if !ok || ns == "" || name == "" {
		return nil, usageError("--from-policy wants NAMESPACE/NAME, got %q", a.creds.fromPolicy)
	}
	c, err := a.kube.client()
	if err != nil {
		return nil, err
	}
	var p v1.TenantPurchasePolicy
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
		return nil, &clusterError{what: "reading TenantPurchasePolicy " + ns + "/" + name, err: err}
	}
	if tenant == "" {
		tenant = p.Spec.TenantID
	}
	loader := clustercreds.Loader{Reader: c, Assertions: clustercreds.ServiceAccountTokens(c), RefreshTokens: clustercreds.SecretRefreshTokens(c)}
	m, err := loader.Material(ctx, ns, tenant, p.Spec.Auth)
	if err != nil {
		return nil, &clusterError{what: "reading the credentials of TenantPurchasePolicy " + ns + "/" + name, err: err}
	}
	cred := &credential{material: m, policy: &p}
	switch a := p.Spec.Auth; {
	case a.ClientSecretRef != nil:
		cred.method = "client secret from Secret " + ns + "/" + a.ClientSecretRef.Name
	case a.ClientCertificateRef != nil:
		cred.method = "client certificate from Secret " + ns + "/" + a.ClientCertificateRef.Name
	case a.WorkloadIdentity != nil:
		cred.method = "workload identity of ServiceAccount " + ns + "/" + a.WorkloadIdentity.ServiceAccountName
	case a.RefreshTokenRef != nil:
		cred.method, cred.delegated = "delegated refresh token from Secret "+ns+"/"+a.RefreshTokenRef.Name, true
	}
	return cred, nil
}

// readSecretFile reads a one-line secret file.
func readSecretFile(flag, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError("%s: %v", flag, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", usageError("%s: %s is empty", flag, path)
	}
	return v, nil
}
