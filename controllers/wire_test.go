package controllers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tenantpolicy/purchase-policy-controller"

// TestImportLayering keeps imports running one way. The wiring lives in this
// package, so no package under internal/ (nor the API) imports controllers.
// The Microsoft clients, tests included, depend on no Kubernetes client code:
// what needs the cluster (ServiceAccount tokens, the refresh-token Secret,
// Kubernetes error kinds) lives in internal/clustercreds, so they build and
// test without a control plane. The command line (kubectl-tpp) shares all of
// it without importing the controller or a manager.
func TestImportLayering(t *testing.T) {
	cases := map[string]struct {
		packages  []string
		test      bool
		forbidden []string
	}{
		"nothing below imports the controller": {
			packages:  []string{module + "/internal/...", module + "/api/..."},
			forbidden: []string{module + "/controllers"},
		},
		"the command line runs without the controller or a manager": {
			packages:  []string{module + "/cmd/kubectl-tpp/...", module + "/internal/cli/..."},
			forbidden: []string{module + "/controllers", "sigs.k8s.io/controller-runtime/pkg/manager"},
		},
		"subscription tracking knows neither Kubernetes nor the Graph SDK (fuzzing it stays cheap)": {
			packages:  []string{module + "/internal/tracking/...", module + "/internal/m365/directory/..."},
			test:      true,
			forbidden: []string{"k8s.io/", "sigs.k8s.io/", "github.com/microsoftgraph/", "github.com/microsoft/kiota", "github.com/Azure/", module + "/api"},
		},
		"the Microsoft clients know no Kubernetes": {
			packages:  []string{module + "/internal/m365/..."},
			test:      true,
			forbidden: []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "k8s.io/api/"},
		},
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := []string{"list", "-deps"}
			if tc.test {
				args = append(args, "-test")
			}
			out, err := exec.Command(goTool, append(args, tc.packages...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			for _, pkg := range strings.Fields(string(out)) {
				for _, f := range tc.forbidden {
					if f = strings.TrimSuffix(f, "/"); pkg == f || strings.HasPrefix(pkg, f+"/") {
						t.Errorf("%s depends on %s", strings.Join(tc.packages, " "), pkg)
					}
				}
			}
		})
	}
}
