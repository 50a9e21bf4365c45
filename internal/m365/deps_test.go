package m365_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientsImportNoKubernetes keeps the Microsoft clients (and their tests)
// free of Kubernetes client code: what needs the cluster (ServiceAccount
// tokens, the refresh-token Secret, Kubernetes error kinds) lives with the
// controller, so these packages build and test without a control plane and a
// command-line tool can use them as they are.
func TestClientsImportNoKubernetes(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test", "github.com/tenantpolicy/purchase-policy-controller/internal/m365/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "k8s.io/api/"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("internal/m365 depends on %s", pkg)
			}
		}
	}
}
