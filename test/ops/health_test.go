package ops

import (
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var argocdDir = filepath.Join("..", "..", "config", "argocd")

// healthCase is one entry of config/argocd/health_test.yaml.
type healthCase struct {
	InputPath    string `json:"inputPath"`
	HealthStatus struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"healthStatus"`
	Kstatus status.Status `json:"kstatus"`
}

func healthCases(t *testing.T) []healthCase {
	t.Helper()
	var f struct {
		Tests []healthCase `json:"tests"`
	}
	readYAML(t, filepath.Join(argocdDir, "health_test.yaml"), &f)
	if len(f.Tests) == 0 {
		t.Fatal("health_test.yaml has no tests")
	}
	return f.Tests
}

func loadSample(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(argocdDir, path))
	if err != nil {
		t.Fatal(err)
	}
	// As the API server serves it: integers as int64.
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u.Object
}

// argoHealth runs health.lua on obj the way Argo CD does: the object as the
// global obj (numbers as Lua numbers), only the safe standard
// libraries, and the returned table's status and message.
func argoHealth(t *testing.T, script string, obj map[string]any) (state, message string) {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		t.Fatalf("health.lua: %v", err)
	}
	hs, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, want a table", L.Get(-1))
	}
	return lua.LVAsString(hs.RawGetString("status")), lua.LVAsString(hs.RawGetString("message"))
}

// toLua converts decoded JSON into Lua values.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for _, e := range v {
			t.Append(toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	}
	panic("toLua: unexpected JSON value")
}

func healthScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(argocdDir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// kstatusOf is Flux's reading of obj (kustomize-controller and helm-controller
// wait with kstatus).
func kstatusOf(t *testing.T, obj map[string]any) status.Status {
	t.Helper()
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// agrees says whether an Argo CD health state and a kstatus status mean the
// same: kstatus knows nothing of suspension.
func agrees(argo string, k status.Status) bool {
	switch argo {
	case "Healthy":
		return k == status.CurrentStatus
	case "Progressing":
		return k == status.InProgressStatus || k == status.TerminatingStatus
	case "Degraded":
		return k == status.FailedStatus
	case "Suspended":
		return true
	}
	return false
}

// TestArgoCDHealthCheck runs health.lua on every sample and compares its
// state and message with health_test.yaml.
func TestArgoCDHealthCheck(t *testing.T) {
	script := healthScript(t)
	for _, tc := range healthCases(t) {
		t.Run(tc.InputPath, func(t *testing.T) {
			state, msg := argoHealth(t, script, loadSample(t, tc.InputPath))
			if state != tc.HealthStatus.Status || msg != tc.HealthStatus.Message {
				t.Errorf("health.lua = %s %q\nwant          %s %q", state, msg, tc.HealthStatus.Status, tc.HealthStatus.Message)
			}
		})
	}
}

// TestFluxKstatusAgreesWithArgoCD computes kstatus on the same samples: it
// must be what health_test.yaml says, and mean what Argo CD's state means.
func TestFluxKstatusAgreesWithArgoCD(t *testing.T) {
	script := healthScript(t)
	seen := map[string]bool{}
	for _, tc := range healthCases(t) {
		t.Run(tc.InputPath, func(t *testing.T) {
			obj := loadSample(t, tc.InputPath)
			k := kstatusOf(t, obj)
			if k != tc.Kstatus {
				t.Errorf("kstatus = %s, want %s", k, tc.Kstatus)
			}
			state, _ := argoHealth(t, script, obj)
			if !agrees(state, k) {
				t.Errorf("Argo CD says %s, Flux (kstatus) says %s", state, k)
			}
			seen[state] = true
		})
	}
	for _, s := range []string{"Healthy", "Progressing", "Degraded", "Suspended"} {
		if !seen[s] {
			t.Errorf("no sample is %s", s)
		}
	}
}

// TestArgoCDConfigMapCarriesTheScript builds config/argocd with kustomize:
// argocd-cm must hold health.lua, unchanged, under the keys Argo CD reads
// for both kinds.
func TestArgoCDConfigMapCarriesTheScript(t *testing.T) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), argocdDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(resources.Resources()) != 1 {
		t.Fatalf("config/argocd builds %d objects, want argocd-cm alone", len(resources.Resources()))
	}
	cm := resources.Resources()[0]
	if cm.GetKind() != "ConfigMap" || cm.GetName() != "argocd-cm" || cm.GetNamespace() != "argocd" {
		t.Fatalf("config/argocd builds %s %s/%s, want ConfigMap argocd/argocd-cm", cm.GetKind(), cm.GetNamespace(), cm.GetName())
	}
	script := healthScript(t)
	data := cm.GetDataMap()
	for _, kind := range []string{"TenantPurchasePolicy", "TenantPurchasePolicySet"} {
		key := "resource.customizations.health.commerce.tenantpolicy.io_" + kind
		if data[key] != script {
			t.Errorf("argocd-cm %s is not health.lua", key)
		}
	}
}
