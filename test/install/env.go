package install

import (
	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// StartAPIServer starts a local control plane (envtest's kube-apiserver and
// etcd, RBAC and admission on) with nothing installed but the CRDs: the
// tests install the rest as a user would.
func StartAPIServer() (*testsupport.Env, error) {
	ctrllog.SetLogger(logr.Discard()) // envtest's own logging is noise here
	return testsupport.StartEnv()
}
