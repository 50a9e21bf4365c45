package v1alpha1_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// crdDir is the generated CRD directory, relative to this package.
const crdDir = "../../config/crd/bases"

// assetsHint tells a developer how to point envtest at its binaries.
const assetsHint = "KUBEBUILDER_ASSETS is unset: run `make test`, or " +
	"`KUBEBUILDER_ASSETS=$(bash hack/envtest-bins.sh) go test ./api/...` from the repository root"

var (
	// restConfig reaches the envtest API server as an administrator.
	restConfig *rest.Config
	// k8sClient talks to the API server directly: no cache, so every read
	// shows what the server stored and every List runs on the server.
	k8sClient client.Client
	testEnv   *envtest.Environment
)

// TestAPI runs the schema suite: the generated CRD installed into a real
// kube-apiserver, which must accept and reject what the API promises.
func TestAPI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "TenantPurchasePolicy schema suite")
}

var _ = BeforeSuite(func() {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		Fail(assetsHint)
	}

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	var err error
	restConfig, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting envtest")

	k8sClient, err = client.New(restConfig, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
