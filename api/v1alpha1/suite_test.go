package v1alpha1_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

var (
	// restConfig reaches the envtest API server as an administrator.
	restConfig *rest.Config
	// k8sClient talks to the API server directly: no cache, so every read
	// shows what the server stored and every List runs on the server.
	k8sClient client.Client
	env       *testsupport.Env
)

// TestAPI runs the schema suite: the generated CRD installed into a real
// kube-apiserver, which must accept and reject what the API promises.
func TestAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "TenantPurchasePolicy schema suite")
}

var _ = BeforeSuite(func() {
	var err error
	env, err = testsupport.StartEnv()
	Expect(err).NotTo(HaveOccurred())
	restConfig, k8sClient = env.Config, env.Client
})

var _ = AfterSuite(func() {
	Expect(env.Stop()).To(Succeed())
})
