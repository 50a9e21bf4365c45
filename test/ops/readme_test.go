package ops

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var readmePath = filepath.Join("..", "..", "README.md")

// readmeTable returns the rows of the first Markdown table after the
// heading line `heading`, each as its trimmed cells (the header and the
// separator row left out).
func readmeTable(t *testing.T, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, after, found := strings.Cut(string(b), "\n"+heading+"\n")
	if !found {
		t.Fatalf("README has no %q section", heading)
	}
	var rows [][]string
	inTable := false
	for line := range strings.Lines(after) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		t.Fatalf("README %q: no table", heading)
	}
	return rows[2:]
}

var backticked = regexp.MustCompile("`([^`]+)`")

func codeSpans(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// documentedMetric is one row of the README's metrics table.
type documentedMetric struct {
	labels []string
}

// readmeMetrics reads the metrics table: | `name` | type | `label`, ... | what |.
func readmeMetrics(t *testing.T) map[string]documentedMetric {
	t.Helper()
	out := map[string]documentedMetric{}
	for _, row := range readmeTable(t, "### Metrics") {
		if len(row) != 4 {
			t.Fatalf("metrics table row %v: want 4 cells (metric, type, labels, what)", row)
		}
		labels := codeSpans(row[2])
		slices.Sort(labels)
		for _, name := range codeSpans(row[0]) {
			out[name] = documentedMetric{labels: labels}
		}
	}
	return out
}

type documentedAlert struct{ severity, runbook string }

// readmeAlerts reads the alerts table: | `Alert` | severity | when | runbook |.
func readmeAlerts(t *testing.T) map[string]documentedAlert {
	t.Helper()
	out := map[string]documentedAlert{}
	for _, row := range readmeTable(t, "### Alerts") {
		if len(row) != 4 {
			t.Fatalf("alerts table row %v: want 4 cells (alert, severity, fires when, runbook)", row)
		}
		for _, name := range codeSpans(row[0]) {
			out[name] = documentedAlert{severity: row[1], runbook: row[3]}
		}
	}
	return out
}

// TestReadmeDocumentsEveryMetricWithItsLabels: every metric the controller
// itself exports is in the README's metrics table with exactly its labels
// (without --metrics-tenant-label), and every documented metric, including
// the controller-runtime ones, is exported.
func TestReadmeDocumentsEveryMetricWithItsLabels(t *testing.T) {
	documented := readmeMetrics(t)
	fams := exportedMetrics(t)
	for name, f := range fams {
		if !strings.HasPrefix(name, "tpp_") {
			continue
		}
		doc, ok := documented[name]
		if !ok {
			t.Errorf("%s (labels %v) is not in the README's metrics table", name, f.labels)
			continue
		}
		if !slices.Equal(doc.labels, f.labels) {
			t.Errorf("%s: the README lists labels %v, the metric has %v", name, doc.labels, f.labels)
		}
	}
	for name, doc := range documented {
		f, ok := fams[name]
		if !ok {
			t.Errorf("the README documents %s, which the controller does not export", name)
			continue
		}
		for _, l := range doc.labels {
			if !slices.Contains(f.labels, l) {
				t.Errorf("the README says %s has label %q; it has %v", name, l, f.labels)
			}
		}
	}
}
