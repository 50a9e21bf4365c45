package testsupport

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// Env is a local control plane (envtest's kube-apiserver and etcd) with the
// project's CRDs installed.
type Env struct {
	Environment *envtest.Environment
	// Config reaches the API server as an administrator.
	Config *rest.Config
	// Scheme knows the built-in types and the project's API.
	Scheme *runtime.Scheme
	// Client talks to the API server directly: no cache, so every read shows
	// what the server stored and every List runs on the server.
	Client client.Client
}

// ErrNoControlPlane says where to get the envtest binaries.
var ErrNoControlPlane = errors.New("envtest binaries not found: run through `make test`, " +
	"or set KUBEBUILDER_ASSETS=$(bash hack/envtest-bins.sh) from the repository root")

// StartEnv starts a control plane with the CRDs of config/crd/bases. The
// binaries come from KUBEBUILDER_ASSETS, or else from the cache
// hack/envtest-bins.sh fills under bin/envtest. configure, if given, may
// change the environment before it starts (API server flags, e.g. an audit
// log). Stop it with Env.Stop.
func StartEnv(configure ...func(*envtest.Environment)) (*Env, error) {
	root := RepoRoot()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		matches, _ := filepath.Glob(filepath.Join(root, "bin", "envtest", "*", "kube-apiserver"))
		if len(matches) == 0 {
			return nil, ErrNoControlPlane
		}
		assets = filepath.Dir(matches[len(matches)-1])
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return nil, err
	}
	e := &Env{Scheme: scheme, Environment: &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
	}}
	for _, c := range configure {
		c(e.Environment)
	}
	cfg, err := e.Environment.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	e.Config = cfg
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// Stop stops the control plane. It is safe on a nil Env.
func (e *Env) Stop() error {
	if e == nil || e.Environment == nil {
		return nil
	}
	return e.Environment.Stop()
}

// modulePath names this repository's root go.mod.
const modulePath = "github.com/tenantpolicy/purchase-policy-controller"

// declaresModule tells whether a go.mod's module line names this module.
func declaresModule(gomod []byte) bool {
	for line := range strings.Lines(string(gomod)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`) == modulePath
		}
	}
	return false
}

// RepoRoot is the repository's root directory: the nearest directory at or
// above the working directory (a test's package directory, or the root for
// the demo) whose go.mod declares this module. It does not read source file
// paths, so it holds under -trimpath.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("testsupport: working directory: %v", err))
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(b) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("testsupport: no directory at or above the working directory holds the go.mod of " + modulePath)
		}
		dir = parent
	}
}
