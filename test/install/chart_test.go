package install

import (
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// namespaceScopedValues is the chart's non-default values file.
const namespaceScopedValues = "ci/namespace-scoped-values.yaml"

func TestHelmLint(t *testing.T) {
	for name, args := range map[string][]string{
		"default values":      nil,
		namespaceScopedValues: {"-f", filepath.Join(Chart, namespaceScopedValues)},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := RunTool("helm", append([]string{"lint", "--strict", Chart}, args...)...); err != nil {
				t.Errorf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

// deploymentOf returns the single Deployment and its manager container.
func deploymentOf(t *testing.T, objs []*unstructured.Unstructured) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d, err := Deployment(objs)
	if err != nil {
		t.Fatal(err)
	}
	return d, d.Spec.Template.Spec.Containers[0]
}

// sourceYAML reads a file of the repository as one object.
func sourceYAML(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	root := testsupport.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("%s: want one object, got %d (%v)", path, len(objs), err)
	}
	return objs[0]
}

func one(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	found := Find(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want one %s, found %d", kind, len(found))
	}
	return found[0]
}

func TestHelmDefaults(t *testing.T) {
	objs := mustRender(t, SourceNamed("helm template (default values)"))
	d, c := deploymentOf(t, objs)
	wantArgs := []string{
		"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081", "--max-concurrent-reconciles=128",
		"--kube-api-qps=500", "--kube-api-burst=1000", "--writes-per-tenant=4",
		"--zap-log-level=info", "--leader-elect", "--leader-election-id=ppc-purchase-policy-controller",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("controller flags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("ghcr.io/tenantpolicy/purchase-policy-controller:0.1.0", c.Image); diff != "" {
		t.Errorf("image defaults to the chart's appVersion (-want +got):\n%s", diff)
	}
	if ptr.Deref(d.Spec.Replicas, 0) != 2 {
		t.Errorf("replicas: %v, want 2 (a standby leader)", d.Spec.Replicas)
	}
	sc := c.SecurityContext
	if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container security context %+v: want a read-only root file system, no privilege escalation, every capability dropped", sc)
	}
	psc := d.Spec.Template.Spec.SecurityContext
	if psc == nil || !ptr.Deref(psc.RunAsNonRoot, false) || ptr.Deref(psc.RunAsUser, 0) != 65532 {
		t.Errorf("pod security context %+v: want non-root 65532", psc)
	}
	for _, kind := range []string{"ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"} {
		if len(Find(objs, kind)) != 0 {
			t.Errorf("%s is rendered by default; it is opt-in", kind)
		}
	}
	for _, r := range Find(objs, "Role") {
		if strings.HasSuffix(r.GetName(), "-manager") {
			t.Errorf("cluster scope renders a manager Role in %s", r.GetNamespace())
		}
	}
	wantRules := sourceYAML(t, "config/rbac/role.yaml").Object["rules"]
	for _, cr := range Find(objs, "ClusterRole") {
		if strings.HasSuffix(cr.GetName(), "-manager") {
			if diff := cmp.Diff(wantRules, cr.Object["rules"]); diff != "" {
				t.Errorf("the chart's manager ClusterRole differs from controller-gen's config/rbac/role.yaml (-want +got):\n%s", diff)
			}
		}
	}
	if len(Find(objs, "ValidatingAdmissionPolicy")) != 1 || len(Find(objs, "ValidatingAdmissionPolicyBinding")) != 1 {
		t.Error("the token-audience policy and its binding are installed by default")
	}
}

func TestHelmNamespaceScopedValues(t *testing.T) {
	objs := mustRender(t, SourceNamed("helm template -f ci/namespace-scoped-values.yaml"))
	d, c := deploymentOf(t, objs)
	wantArgs := []string{
		"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081", "--max-concurrent-reconciles=8",
		"--kube-api-qps=500", "--kube-api-burst=1000", "--writes-per-tenant=4",
		"--zap-log-level=debug", "--leader-elect", "--leader-election-id=tpp-shard-ab",
		"--watch-label-selector=shard in (a,b)", "--watch-namespaces=tenants-a,tenants-b",
		"--reconcile-timeout=90s", "--call-timeout=20s",
		"--ca-file=/etc/purchase-policy-controller/ca/proxy-ca.pem", "--zap-encoder=console",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("controller flags (-want +got):\n%s", diff)
	}
	if !strings.HasSuffix(c.Image, "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") {
		t.Errorf("image %q: a digest pins it", c.Image)
	}
	vols := d.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].ConfigMap == nil || vols[0].ConfigMap.Name != "corporate-proxy-ca" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/purchase-policy-controller/ca" {
		t.Errorf("extra CA: volumes %+v, mounts %+v: want the ConfigMap mounted where --ca-file points", vols, c.VolumeMounts)
	}

	wantRules := sourceYAML(t, "config/rbac/role.yaml").Object["rules"]
	var roleNamespaces []string
	for _, r := range Find(objs, "Role") {
		if strings.HasSuffix(r.GetName(), "-manager") {
			roleNamespaces = append(roleNamespaces, r.GetNamespace())
			if diff := cmp.Diff(wantRules, r.Object["rules"]); diff != "" {
				t.Errorf("Role in %s differs from config/rbac/role.yaml (-want +got):\n%s", r.GetNamespace(), diff)
			}
		}
	}
	if diff := cmp.Diff([]string{"tenants-a", "tenants-b"}, roleNamespaces); diff != "" {
		t.Errorf("manager Roles (-want +got):\n%s", diff)
	}

	rule := one(t, objs, "PrometheusRule")
	if diff := cmp.Diff(sourceYAML(t, "config/prometheus/prometheusrule.yaml").Object["spec"], rule.Object["spec"]); diff != "" {
		t.Errorf("the PrometheusRule must carry config/prometheus/prometheusrule.yaml's alerts verbatim (-want +got):\n%s", diff)
	}
	checkServiceMonitor(t, objs)
	checkDashboards(t, objs)
	np := one(t, objs, "NetworkPolicy")
	if types, _, _ := unstructured.NestedStringSlice(np.Object, "spec", "policyTypes"); !slices.Equal(types, []string{"Ingress", "Egress"}) {
		t.Errorf("NetworkPolicy policyTypes %v: want Ingress and Egress", types)
	}
}

// checkServiceMonitor: the endpoints are config/prometheus/monitor.yaml's
// (with the values' interval) and the selector picks this release's metrics
// Service.
func checkServiceMonitor(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	sm := one(t, objs, "ServiceMonitor")
	src, _, _ := unstructured.NestedSlice(sourceYAML(t, "config/prometheus/monitor.yaml").Object, "spec", "endpoints")
	got, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(src) == 0 || len(got) != len(src) {
		t.Fatalf("ServiceMonitor endpoints %v, source %v", got, src)
	}
	for i := range src {
		want := runtime.DeepCopyJSONValue(src[i]).(map[string]any)
		want["interval"] = "30s"
		if diff := cmp.Diff(want, got[i]); diff != "" {
			t.Errorf("endpoint %d (-want +got):\n%s", i, diff)
		}
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	svc := one(t, objs, "Service")
	for k, v := range sel {
		if svc.GetLabels()[k] != v {
			t.Errorf("the ServiceMonitor selects %s=%s, which the metrics Service does not carry (%v)", k, v, svc.GetLabels())
		}
	}
}

// checkDashboards: every dashboard of config/grafana is in a ConfigMap,
// verbatim, labelled for Grafana's sidecar.
func checkDashboards(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testsupport.RepoRoot(), "config", "grafana", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cm := range Find(objs, "ConfigMap") {
		if cm.GetLabels()["grafana_dashboard"] != "1" {
			continue
		}
		data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
		maps.Copy(got, data)
	}
	want := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want[filepath.Base(f)] = strings.TrimSuffix(string(b), "\n")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dashboard ConfigMaps against config/grafana (-want +got):\n%s", diff)
	}
}

// writeValues writes a values file for one test.
func writeValues(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadValuesFailWithAMessage: values.schema.json (and the templates'
// cross-field checks) refuse bad values at install, naming the value.
func TestBadValuesFailWithAMessage(t *testing.T) {
	cases := map[string]struct{ values, want string }{
		"misspelt scope":                     {"rbac: {scope: Namespace}", "at '/rbac/scope': value must be one of 'Cluster', 'Namespaces'"},
		"namespace scope without namespaces": {"rbac: {scope: Namespaces, namespaces: []}", "at '/rbac/namespaces': minItems"},
		"namespaces with cluster scope":      {"rbac: {namespaces: [tenants-a]}", "rbac.namespaces is set but rbac.scope is Cluster"},
		"invalid namespace name":             {"rbac: {scope: Namespaces, namespaces: [Tenants_A]}", "at '/rbac/namespaces/0'"},
		"no concurrency":                     {"controller: {maxConcurrentReconciles: 0}", "at '/controller/maxConcurrentReconciles': minimum"},
		"concurrency as a string":            {"controller: {maxConcurrentReconciles: \"4\"}", "at '/controller/maxConcurrentReconciles': got string, want integer"},
		"unknown key (a typo)":               {"replica: 3", "additional properties 'replica' not allowed"},
		"duration in words":                  {"controller: {reconcileTimeout: 2 minutes}", "at '/controller/reconcileTimeout'"},
		"endpoint with a path":               {"controller: {endpoints: {licensing: https://proxy.example/v1.0}}", "at '/controller/endpoints/licensing'"},
		"plain-http endpoint":                {"controller: {endpoints: {graph: http://graph.example}}", "at '/controller/endpoints/graph'"},
		"lease name not DNS":                 {"leaderElection: {id: Shard_A}", "at '/leaderElection/id'"},
		"both CA sources":                    {"extraCA: {configMap: a, secret: b}", "extraCA: set configMap or secret, not both"},
		"unknown log level":                  {"controller: {logLevel: verbose}", "at '/controller/logLevel'"},
		"an extra arg that is no flag":       {"controller: {extraArgs: [shard=a]}", "at '/controller/extraArgs/0'"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := HelmTemplate("ppc-system", "-f", writeValues(t, c.values))
			if err == nil {
				t.Fatalf("values %q were accepted (%d objects)", c.values, len(out))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("values %q: the error does not say %q:\n%v", c.values, c.want, err)
			}
		})
	}
}

// TestDashboardConfigMaps renders the chart with a dashboard in
// files/dashboards (where make manifests copies config/grafana/*.json): one
// ConfigMap per dashboard, labelled for Grafana's sidecar, with the JSON
// verbatim; none without dashboards.
func TestDashboardConfigMaps(t *testing.T) {
	root := testsupport.RepoRoot()
	chart := filepath.Join(t.TempDir(), "chart")
	if err := os.CopyFS(chart, os.DirFS(filepath.Join(root, Chart))); err != nil {
		t.Fatal(err)
	}
	render := func(t *testing.T) []*unstructured.Unstructured {
		t.Helper()
		out, err := RunTool("helm", "template", HelmRelease, chart, "--namespace", "ppc-system", "--set", "grafanaDashboard.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		return Find(objs, "ConfigMap")
	}
	dir := filepath.Join(chart, "files", "dashboards")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if cms := render(t); len(cms) != 0 {
		t.Errorf("no dashboard file: want no ConfigMap, got %d", len(cms))
	}
	dashboard := `{"title": "Purchase policies", "panels": [{"targets": [{"expr": "sum(tpp_drifted_products)"}]}]}` + "\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet.json"), []byte(dashboard), 0o644); err != nil {
		t.Fatal(err)
	}
	cms := render(t)
	if len(cms) != 1 {
		t.Fatalf("one dashboard file: want one ConfigMap, got %d", len(cms))
	}
	if diff := cmp.Diff(map[string]string{"grafana_dashboard": "1"}, cms[0].GetLabels(), cmpSubset); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	data, _, _ := unstructured.NestedStringMap(cms[0].Object, "data")
	if diff := cmp.Diff(strings.TrimSuffix(dashboard, "\n"), data["fleet.json"]); diff != "" {
		t.Errorf("dashboard JSON (-want +got):\n%s", diff)
	}
}

// cmpSubset compares only the keys of the first map.
var cmpSubset = cmp.FilterPath(func(p cmp.Path) bool {
	mi, ok := p.Last().(cmp.MapIndex)
	if !ok {
		return false
	}
	vx, _ := mi.Values()
	return !vx.IsValid()
}, cmp.Ignore())

// TestChartCopiesAreCurrent re-runs hack/sync-chart.sh (what make manifests
// runs) into a scratch chart and compares: the chart's crds/ and files/ are
// exactly the copies of their sources in config/.
func TestChartCopiesAreCurrent(t *testing.T) {
	root := testsupport.RepoRoot()
	scratch := t.TempDir()
	cmd := exec.Command("bash", "hack/sync-chart.sh")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CHART_DIR="+scratch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/sync-chart.sh: %v\n%s", err, out)
	}
	for _, dir := range []string{"crds", "files"} {
		want, got := treeOf(t, filepath.Join(scratch, dir)), treeOf(t, filepath.Join(root, Chart, dir))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s/%s is stale: run make manifests (-fresh +committed):\n%s", Chart, dir, diff)
		}
	}
}

// treeOf maps every file under dir (relative path) to its content.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
