package ops

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// Paths from this package to the artefacts under test.
var (
	rulePath     = filepath.Join("..", "..", "config", "prometheus", "prometheusrule.yaml")
	ruleTestsDir = filepath.Join("..", "..", "config", "prometheus", "tests")
)

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

func (g ruleGroups) alerts() []rule {
	var out []rule
	for _, grp := range g.Groups {
		out = append(out, grp.Rules...)
	}
	return out
}

// loadRules reads the PrometheusRule's spec: a Prometheus rule file.
func loadRules(t *testing.T) ruleGroups {
	t.Helper()
	var pr struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       ruleGroups     `json:"spec"`
	}
	readYAML(t, rulePath, &pr)
	if pr.Kind != "PrometheusRule" || len(pr.Spec.alerts()) == 0 {
		t.Fatalf("%s: want a PrometheusRule with rules, got kind %q", rulePath, pr.Kind)
	}
	return pr.Spec
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// promtool finds promtool or fails with what to install.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := testsupport.PrometheusTool("promtool")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	t.Logf("promtool %v:\n%s", args, out)
}

func TestAlertRulesPassPromtoolCheck(t *testing.T) {
	dir := t.TempDir()
	writeYAML(t, filepath.Join(dir, "rules.yaml"), loadRules(t))
	runPromtool(t, dir, "check", "rules", "rules.yaml")
}

// TestAlertRulesPassTheirUnitTests runs config/prometheus/tests with promtool.
// The unit tests compare every annotation, so the rules they see keep only
// the templated summary; the static description and runbook_url are checked
// by TestAlertsAreAnnotatedAndDocumented.
func TestAlertRulesPassTheirUnitTests(t *testing.T) {
	dir := t.TempDir()
	rules := loadRules(t)
	for i := range rules.Groups {
		for j := range rules.Groups[i].Rules {
			r := &rules.Groups[i].Rules[j]
			r.Annotations = map[string]string{"summary": r.Annotations["summary"]}
		}
	}
	writeYAML(t, filepath.Join(dir, "rules.yaml"), rules)
	files := ruleTestFiles(t)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"test", "rules"}
	for _, f := range files {
		args = append(args, filepath.Base(f))
	}
	runPromtool(t, dir, args...)
}

func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(ruleTestsDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in %s (%v)", ruleTestsDir, err)
	}
	return files
}

type ruleTestFile struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval string   `json:"evaluation_interval"`
	Tests              []struct {
		Name         string `json:"name"`
		Interval     string `json:"interval"`
		InputSeries  []any  `json:"input_series"`
		AlertRuleTst []struct {
			EvalTime  string `json:"eval_time"`
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertHasAFiringAndASilentCase reads the promtool tests: each
// alert must be expected to fire at some evaluation and expected silent at
// another, and no test may name an alert that does not exist.
func TestEveryAlertHasAFiringAndASilentCase(t *testing.T) {
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range ruleTestFiles(t) {
		var tf ruleTestFile
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTst {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	var names []string
	for _, r := range loadRules(t).alerts() {
		names = append(names, r.Alert)
		if !fires[r.Alert] {
			t.Errorf("%s: no promtool test expects it to fire", r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no promtool test expects it to stay silent", r.Alert)
		}
	}
	for name := range fires {
		if !slices.Contains(names, name) {
			t.Errorf("the promtool tests expect %s, which is not a rule", name)
		}
	}
}

var severities = []string{"critical", "warning", "info"}

func TestAlertsAreAnnotatedAndDocumented(t *testing.T) {
	documented := readmeAlerts(t)
	var names []string
	for _, r := range loadRules(t).alerts() {
		names = append(names, r.Alert)
		if !slices.Contains(severities, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want one of %v", r.Alert, r.Labels["severity"], severities)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		doc, ok := documented[r.Alert]
		switch {
		case !ok:
			t.Errorf("%s is not in the README's alerts table", r.Alert)
		case doc.severity != r.Labels["severity"]:
			t.Errorf("%s: the README says severity %q, the rule %q", r.Alert, doc.severity, r.Labels["severity"])
		case doc.runbook == "":
			t.Errorf("%s: the README's alerts table has no runbook for it", r.Alert)
		}
	}
	for name := range documented {
		if !slices.Contains(names, name) {
			t.Errorf("the README documents alert %s, which is not a rule", name)
		}
	}
}

func TestAlertExpressionsNameExportedMetrics(t *testing.T) {
	for _, r := range loadRules(t).alerts() {
		checkNamesExported(t, "alert "+r.Alert, r.Expr)
	}
}
