package install

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The package's API server, with the Prometheus Operator's CRDs installed:
// applied manifests and admission are checked against it.
var (
	apiConfig *rest.Config
	admin     client.Client
)

// testTimeout bounds one test's calls to the API server.
const testTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	env, err := StartAPIServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		return 2
	}
	defer func() { _ = env.Stop() }()
	apiConfig = env.Config
	if admin, err = NewClient(env.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// As on a monitored cluster: the Prometheus Operator's CRDs come first.
	crds, err := PrometheusOperatorCRDs()
	if err == nil {
		err = Apply(context.Background(), admin, crds, false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "installing the Prometheus Operator CRDs:", err)
		return 2
	}
	return m.Run()
}

// mustRender renders a source or fails the test.
func mustRender(t *testing.T, s Source) []*unstructured.Unstructured {
	t.Helper()
	objs, err := s.Render()
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	return objs
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
