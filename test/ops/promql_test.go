package ops

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

var promql = parser.NewParser(parser.Options{})

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance", "namespace"}

// prometheusSeries are series Prometheus makes itself for every target.
var prometheusSeries = []string{"up"}

// selector is one series selector of an expression.
type selector struct {
	name   string
	labels []string // label names it matches on
}

// selectors parses expr and returns its series selectors.
func selectors(expr string) ([]selector, error) {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []selector
	var bad error
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{name: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type == labels.MatchEqual {
					s.name = m.Value
				}
				continue
			}
			s.labels = append(s.labels, m.Name)
		}
		if s.name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		}
		out = append(out, s)
		return nil
	})
	return out, bad
}

// grafanaVariable matches $name, ${name} and [[name]].
var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)\}?|\[\[(\w+)\]\]`)

// expandGrafana replaces Grafana's variables with values PromQL parses:
// range variables with a duration, any other with a word (they only appear
// in label values and regexes).
func expandGrafana(expr string) string {
	return grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		switch grafanaVariable.FindStringSubmatch(v)[1] {
		case "__rate_interval", "__interval", "__range", "__range_s":
			return "5m"
		}
		return "x"
	})
}

// checkNamesExported fails t for every selector of expr whose metric the
// controller does not export, or whose label matchers name a label that
// metric does not carry.
func checkNamesExported(t *testing.T, where, expr string) {
	t.Helper()
	sels, err := selectors(expandGrafana(expr))
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	known := exportedSeries(t)
	fams := exportedMetrics(t)
	for _, s := range sels {
		if slices.Contains(prometheusSeries, s.name) {
			continue
		}
		if !known[s.name] {
			t.Errorf("%s: %s is not a metric the controller exports", where, s.name)
			continue
		}
		allowed := append(append([]string{"le"}, targetLabels...), familyOf(fams, s.name).labels...)
		for _, l := range s.labels {
			if !slices.Contains(allowed, l) {
				t.Errorf("%s: %s has no label %q (it has %v)", where, s.name, l, familyOf(fams, s.name).labels)
			}
		}
	}
}

// familyOf finds the family a series name belongs to.
func familyOf(fams map[string]family, series string) family {
	for name, f := range fams {
		if slices.Contains(f.series(name), series) {
			return f
		}
	}
	return family{}
}

func TestSelectorsFindEveryMetric(t *testing.T) {
	got, err := selectors(`sum by (api) (rate(a{code="429"}[5m])) / on() group_left b + absent(c{x="y"} == 1) or {__name__="d"}`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.name)
	}
	if !slices.Equal(names, []string{"a", "b", "c", "d"}) {
		t.Errorf("selectors = %v, want a, b, c, d", names)
	}
	if _, err := selectors(`{job="x"}`); err == nil {
		t.Error("a selector without a metric name must be reported")
	}
	if e := expandGrafana(`rate(x{namespace=~"$namespace"}[$__rate_interval])`); e != `rate(x{namespace=~"x"}[5m])` {
		t.Errorf("expandGrafana = %s", e)
	}
}
