// Package install renders the manifests the way a user installs them
// (`kustomize build`, `helm template`, with kustomize and helm built from
// their Go modules by hack/tools.sh), applies them to an API server and works
// out what RBAC they grant the controller. Its own tests prove the manifests
// are accepted and minimal; test/e2e runs the controller with them. It
// decides what RBAC the manifests may grant (the allow-list); it must not
// edit the manifests it checks.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// Chart is the Helm chart's directory, relative to the repository root.
const Chart = "charts/purchase-policy-controller"

// Source is one way to install: a kustomize directory or the chart with
// values files, and who the controller is once installed.
type Source struct {
	// Name says what a user runs.
	Name string
	// KustomizeDir (relative to the repository root) or HelmValues (files
	// relative to the chart) select the renderer.
	KustomizeDir string
	HelmValues   []string
	// Namespace and ServiceAccount are the controller's.
	Namespace, ServiceAccount string
	// Watched are the namespaces of namespace-scoped mode; nil: cluster-wide.
	Watched []string
}

// HelmRelease is the release name the tests install the chart as.
const HelmRelease = "ppc"

// Sources are the four ways the tests install the controller.
var Sources = []Source{
	{Name: "kustomize build config/default", KustomizeDir: "config/default",
		Namespace: "purchase-policy-system", ServiceAccount: "purchase-policy-controller-manager"},
	{Name: "kustomize build config/overlays/namespace-scoped", KustomizeDir: "config/overlays/namespace-scoped",
		Namespace: "purchase-policy-system", ServiceAccount: "purchase-policy-controller-manager", Watched: []string{"tenants-a", "tenants-b"}},
	{Name: "helm template (default values)",
		Namespace: "ppc-system", ServiceAccount: HelmRelease + "-purchase-policy-controller"},
	{Name: "helm template -f ci/namespace-scoped-values.yaml", HelmValues: []string{"ci/namespace-scoped-values.yaml"},
		Namespace: "ppc-system", ServiceAccount: HelmRelease + "-purchase-policy-controller", Watched: []string{"tenants-a", "tenants-b"}},
}

// SourceNamed returns the Source with that name; it panics on a typo.
func SourceNamed(name string) Source {
	for _, s := range Sources {
		if s.Name == name {
			return s
		}
	}
	panic("install: no source " + name)
}

// Username is the controller's Kubernetes user name.
func (s Source) Username() string {
	return "system:serviceaccount:" + s.Namespace + ":" + s.ServiceAccount
}

// Render returns the objects the source installs (with the chart's CRDs).
func (s Source) Render() ([]*unstructured.Unstructured, error) {
	if s.KustomizeDir != "" {
		return Kustomize(s.KustomizeDir)
	}
	args := []string{"--include-crds"}
	for _, v := range s.HelmValues {
		args = append(args, "-f", filepath.Join(Chart, v))
	}
	return HelmTemplate(s.Namespace, args...)
}

var toolPaths sync.Map // tool name -> path

// Tool returns the path of helm, kustomize or prometheus-operator-crds from
// hack/tools.sh, which builds the binaries from their Go modules on first use.
func Tool(name string) (string, error) {
	if p, ok := toolPaths.Load(name); ok {
		return p.(string), nil
	}
	out, err := run("bash", "hack/tools.sh", name)
	if err != nil {
		return "", err
	}
	p := strings.TrimSpace(string(out))
	toolPaths.Store(name, p)
	return p, nil
}

// run runs a command in the repository root and returns its stdout; the
// error carries stderr.
func run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = testsupport.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// RunTool runs helm or kustomize in the repository root.
func RunTool(tool string, args ...string) ([]byte, error) {
	bin, err := Tool(tool)
	if err != nil {
		return nil, err
	}
	return run(bin, args...)
}

// Kustomize returns the objects of `kustomize build dir`.
func Kustomize(dir string) ([]*unstructured.Unstructured, error) {
	out, err := RunTool("kustomize", "build", dir)
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// HelmTemplate returns the objects of `helm template` of the chart, released
// as HelmRelease in namespace, with extra arguments (values files, --set).
func HelmTemplate(namespace string, args ...string) ([]*unstructured.Unstructured, error) {
	out, err := RunTool("helm", append([]string{"template", HelmRelease, Chart, "--namespace", namespace}, args...)...)
	if err != nil {
		return nil, err
	}
	return Decode(out)
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(b []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// Find returns the objects of a kind.
func Find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Deployment returns the single Deployment the objects install.
func Deployment(objs []*unstructured.Unstructured) (*appsv1.Deployment, error) {
	deps := Find(objs, "Deployment")
	if len(deps) != 1 {
		return nil, fmt.Errorf("want one Deployment, found %d", len(deps))
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(deps[0].Object, &d); err != nil {
		return nil, err
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return nil, fmt.Errorf("Deployment %s: want one container, found %d", d.Name, len(d.Spec.Template.Spec.Containers))
	}
	return &d, nil
}
