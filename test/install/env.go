package install

import (
	"errors"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// StartAPIServer starts an empty local control plane (envtest's
// kube-apiserver and etcd from KUBEBUILDER_ASSETS, RBAC and admission on):
// nothing is installed, the tests install it as a user would.
func StartAPIServer() (*envtest.Environment, *rest.Config, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return nil, nil, errors.New("KUBEBUILDER_ASSETS is not set: run through `make test` (KUBEBUILDER_ASSETS=$(bash hack/envtest-bins.sh))")
	}
	ctrllog.SetLogger(logr.Discard()) // envtest's own logging is noise here
	env := &envtest.Environment{}
	cfg, err := env.Start()
	return env, cfg, err
}
