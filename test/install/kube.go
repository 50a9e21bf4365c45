package install

import (
	"errors"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// NewClient returns a client that knows the core, CRD and policy types.
func NewClient(cfg *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), apiextensionsv1.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// Impersonating returns a copy of cfg that acts as user: the API server
// authorizes every request as that user's, with RBAC and admission.
func Impersonating(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c
}

// WriteImpersonatingKubeconfig writes a copy of kubeconfig (an
// administrator's, e.g. envtest's) whose users act as user, so a program
// given it runs with exactly user's permissions.
func WriteImpersonatingKubeconfig(kubeconfig []byte, user, path string) error {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return err
	}
	if len(cfg.AuthInfos) == 0 {
		return errors.New("install: the kubeconfig has no users")
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
	}
	return clientcmd.WriteToFile(*cfg, path)
}
