package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// The controller runs as the ServiceAccount config/rbac binds its roles to:
// the harness provisions a client certificate for exactly that user name
// (envtest AddUser), so config/rbac applies unchanged and the audit log
// tells the controller's requests from the harness's.
const (
	controllerNamespace      = "system"
	controllerServiceAccount = "controller-manager"
	controllerUser           = "system:serviceaccount:" + controllerNamespace + ":" + controllerServiceAccount
)

// The scraper reads the controller's /metrics with a TokenRequest token, as
// Prometheus would.
const (
	scraperServiceAccount = "bench-metrics-scraper"
	metricsReaderRole     = "metrics-reader"
	scraperTokenSeconds   = 24 * 60 * 60
)

// controlPlane is envtest's kube-apiserver and etcd with an audit log.
type controlPlane struct {
	env            *envtest.Environment
	admin          *rest.Config
	kube           client.WithWatch
	scheme         *runtime.Scheme
	kubeconfig     string // the controller's
	audit          *auditLog
	scraperToken   string
	apiserverFlags []string
}

// startControlPlane starts etcd and kube-apiserver (guarded so they die with
// the harness) with state, certificates and the audit log under dir,
// installs the CRD and config/rbac, and writes the controller's kubeconfig.
// With profiling the API server serves /debug/pprof.
func startControlPlane(ctx context.Context, root, dir, assets string, profiling bool) (*controlPlane, error) {
	apiserverPath, etcdPath, err := procs.GuardBinaries(filepath.Join(dir, "bin"), assets)
	if err != nil {
		return nil, fmt.Errorf("preparing control-plane binaries: %w", err)
	}
	for _, sub := range []string{"etcd", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	cp := &controlPlane{scheme: runtime.NewScheme(), audit: &auditLog{path: filepath.Join(dir, "audit.log")}}
	if err := errors.Join(clientgoscheme.AddToScheme(cp.scheme), v1.AddToScheme(cp.scheme)); err != nil {
		return nil, err
	}
	policyFile := filepath.Join(dir, "audit-policy.yaml")
	if err := writeAuditPolicy(policyFile); err != nil {
		return nil, err
	}
	cp.env = &envtest.Environment{
		Scheme:                cp.scheme,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cp.env.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath, DataDir: filepath.Join(dir, "etcd")}
	api := cp.env.ControlPlane.GetAPIServer()
	api.Path, api.CertDir = apiserverPath, filepath.Join(dir, "apiserver")
	cp.apiserverFlags = []string{"--audit-policy-file=" + policyFile, "--audit-log-path=" + cp.audit.path, "--audit-log-maxsize=" + auditLogMaxMB}
	api.Configure().Set("audit-policy-file", policyFile).Set("audit-log-path", cp.audit.path).Set("audit-log-maxsize", auditLogMaxMB)
	if profiling {
		cp.apiserverFlags = append(cp.apiserverFlags, "--profiling=true")
		api.Configure().Set("profiling", "true")
	}
	if cp.admin, err = cp.env.Start(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	if err := cp.setUp(ctx, root, dir); err != nil {
		cp.stop()
		return nil, err
	}
	return cp, nil
}

// kubeClientConfig is the harness's config: the admin user with no
// client-side rate limit.
func (cp *controlPlane) kubeClientConfig() *rest.Config {
	cfg := rest.CopyConfig(cp.admin)
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

// setUp makes the harness's client, applies config/rbac, and provisions the
// controller's and the scraper's identities.
func (cp *controlPlane) setUp(ctx context.Context, root, dir string) error {
	var err error
	if cp.kube, err = client.NewWithWatch(cp.kubeClientConfig(), client.Options{Scheme: cp.scheme}); err != nil {
		return err
	}
	if err := cp.applyRBAC(ctx, filepath.Join(root, "config", "rbac")); err != nil {
		return err
	}
	user, err := cp.env.AddUser(envtest.User{Name: controllerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + controllerNamespace}}, nil)
	if err != nil {
		return fmt.Errorf("provisioning the controller's user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	cp.kubeconfig = filepath.Join(dir, "controller.kubeconfig")
	if err := os.WriteFile(cp.kubeconfig, kc, 0o600); err != nil {
		return err
	}
	cp.scraperToken, err = cp.scraperIdentity(ctx)
	return err
}

// applyRBAC creates the controller's namespace and every object of the
// config/rbac manifests, unchanged (kustomize only renames them).
func (cp *controlPlane) applyRBAC(ctx context.Context, dir string) error {
	if err := cp.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllerNamespace}}); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		objs, err := readManifests(f)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := cp.kube.Create(ctx, o); err != nil {
				return fmt.Errorf("applying %s %s from %s: %w", o.GetKind(), o.GetName(), f, err)
			}
		}
	}
	return nil
}

// readManifests decodes every object of a multi-document YAML file.
func readManifests(path string) ([]*unstructured.Unstructured, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var out []*unstructured.Unstructured
	for {
		var o unstructured.Unstructured
		if err := dec.Decode(&o.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(o.Object) > 0 {
			out = append(out, &o)
		}
	}
}

// scraperIdentity creates a ServiceAccount allowed to GET /metrics
// (config/rbac's metrics-reader) and returns a token for it.
func (cp *controlPlane) scraperIdentity(ctx context.Context) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: scraperServiceAccount, Namespace: controllerNamespace}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: scraperServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: metricsReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: scraperServiceAccount, Namespace: controllerNamespace}},
	}
	for _, o := range []client.Object{sa, binding} {
		if err := cp.kube.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", err
		}
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](scraperTokenSeconds)}}
	if err := cp.kube.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("requesting the scraper's token: %w", err)
	}
	return tr.Status.Token, nil
}

// stop stops the API server and etcd.
func (cp *controlPlane) stop() error {
	if cp == nil || cp.env == nil {
		return nil
	}
	return cp.env.Stop()
}

// apiserverArgs describes how the API server was started, for the report.
func (cp *controlPlane) apiserverArgs() string { return strings.Join(cp.apiserverFlags, " ") }
