package ops

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

var readmePath = filepath.Join("..", "..", "README.md")

type documentedAlert struct{ severity, runbook string }

// readmeAlerts reads the alerts table: | `Alert` | severity | fires when | runbook |.
func readmeAlerts(t *testing.T) map[string]documentedAlert {
	t.Helper()
	rows, err := testsupport.ReadmeTable(readmePath, "### Alerts")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]documentedAlert{}
	for _, row := range rows {
		if len(row) != 4 {
			t.Fatalf("alerts table row %v: want 4 cells (alert, severity, fires when, runbook)", row)
		}
		for _, name := range testsupport.CodeSpans(row[0]) {
			out[name] = documentedAlert{severity: row[1], runbook: row[3]}
		}
	}
	return out
}

var metricTypes = map[dto.MetricType]string{
	dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge", dto.MetricType_HISTOGRAM: "histogram",
}

// TestReadmeDocumentsEveryMetricWithItsLabels: every metric the controller
// itself exports is in the README's metrics table with its type and exactly
// its labels (without --metrics-tenant-label), and every documented metric,
// the controller-runtime ones too, is exported with that type and labels.
func TestReadmeDocumentsEveryMetricWithItsLabels(t *testing.T) {
	docs, err := testsupport.ReadmeMetrics(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	fams := exportedMetrics(t)
	documented := map[string]bool{}
	for _, doc := range docs {
		documented[doc.Name] = true
		f, ok := fams[doc.Name]
		switch {
		case !ok:
			t.Errorf("the README documents %s, which the controller does not export", doc.Name)
		case metricTypes[f.typ] != doc.Type:
			t.Errorf("%s: the README says %s, it is a %s", doc.Name, doc.Type, metricTypes[f.typ])
		case strings.HasPrefix(doc.Name, "tpp_") && !slices.Equal(doc.Labels, f.labels):
			t.Errorf("%s: the README lists labels %v, the metric has %v", doc.Name, doc.Labels, f.labels)
		default:
			for _, l := range doc.Labels {
				if !slices.Contains(f.labels, l) {
					t.Errorf("the README says %s has label %q; it has %v", doc.Name, l, f.labels)
				}
			}
		}
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "tpp_") && !documented[name] {
			t.Errorf("%s (labels %v) is not in the README's metrics table", name, f.labels)
		}
	}
}
