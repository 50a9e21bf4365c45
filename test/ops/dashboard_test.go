package ops

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var dashboardPath = filepath.Join("..", "..", "config", "grafana", "purchase-policy-controller.json")

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: want uid, title and panels", dashboardPath)
	}
	return d
}

// queries returns "panel title" → its PromQL expressions, for every panel
// that is not a row, and the template variables' queries.
func (d dashboard) queries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d is used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			for _, tg := range p.Targets {
				out["panel "+p.Title] = append(out["panel "+p.Title], tg.Expr)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		expr, err := variableExpr(v.Query)
		if err != nil {
			t.Errorf("variable %s: %v", v.Name, err)
		}
		out["variable "+v.Name] = []string{expr}
	}
	return out
}

var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*\w+\)\s*$`)

// variableExpr returns the PromQL inside a Grafana variable's
// label_values(expr, label) or query_result(expr).
func variableExpr(raw json.RawMessage) (string, error) {
	var q string
	if err := json.Unmarshal(raw, &q); err != nil {
		var obj struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", err
		}
		q = obj.Query
	}
	if m := labelValues.FindStringSubmatch(q); m != nil {
		return m[1], nil
	}
	if inner, ok := strings.CutPrefix(q, "query_result("); ok {
		return strings.TrimSuffix(inner, ")"), nil
	}
	return "", fmt.Errorf("query %q: want label_values(expr, label) or query_result(expr)", q)
}

// TestDashboardQueriesNameExportedMetrics parses every query of the Grafana
// dashboard with the PromQL parser: each must parse, name only metrics the
// controller exports and match only on labels those metrics have.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	for where, exprs := range loadDashboard(t).queries(t) {
		if len(exprs) == 0 {
			t.Errorf("%s has no query", where)
		}
		for _, e := range exprs {
			checkNamesExported(t, where, e)
		}
	}
}

// TestDashboardShowsEveryControllerMetric: a metric of the controller that
// no panel shows is a blind spot (or a metric nobody needs).
func TestDashboardShowsEveryControllerMetric(t *testing.T) {
	shown := map[string]bool{}
	for _, exprs := range loadDashboard(t).queries(t) {
		for _, e := range exprs {
			sels, _ := selectors(expandGrafana(e))
			for _, s := range sels {
				shown[s.name] = true
			}
		}
	}
	fams := exportedMetrics(t)
	for name, f := range fams {
		if !strings.HasPrefix(name, "tpp_") {
			continue
		}
		seen := false
		for _, s := range f.series(name) {
			seen = seen || shown[s]
		}
		if !seen {
			t.Errorf("no panel shows %s", name)
		}
	}
	if !shown["controller_runtime_reconcile_time_seconds_bucket"] {
		t.Error("no panel shows the reconcile duration")
	}
}
