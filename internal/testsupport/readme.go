package testsupport

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// ReadmeTable returns the body rows of the first Markdown table after the
// line heading (e.g. "### Metrics") in the file at path, each row as its
// trimmed cells.
func ReadmeTable(path, heading string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	_, after, found := strings.Cut(string(b), "\n"+heading+"\n")
	if !found {
		return nil, fmt.Errorf("%s has no %q section", path, heading)
	}
	var rows [][]string
	for line := range strings.Lines(after) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows = append(rows, cells)
	}
	if len(rows) < 3 {
		return nil, fmt.Errorf("%s %q: no table with a body", path, heading)
	}
	return rows[2:], nil // without the header and the |---| row
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// CodeSpans returns the `code` spans of a Markdown cell.
func CodeSpans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// DocumentedMetric is one metric of the README's metrics table.
type DocumentedMetric struct {
	Name string
	// Type is counter, gauge or histogram.
	Type string
	// Labels are sorted.
	Labels []string
}

// ReadmeMetrics reads the README's metrics table, whose rows are
// | `name`[, `name`] | type | `label`, ... | what |.
func ReadmeMetrics(path string) ([]DocumentedMetric, error) {
	rows, err := ReadmeTable(path, "### Metrics")
	if err != nil {
		return nil, err
	}
	var out []DocumentedMetric
	for _, row := range rows {
		if len(row) != 4 {
			return nil, fmt.Errorf("metrics table row %v: want 4 cells (metric, type, labels, what)", row)
		}
		labels := CodeSpans(row[2])
		slices.Sort(labels)
		for _, name := range CodeSpans(row[0]) {
			out = append(out, DocumentedMetric{Name: name, Type: row[1], Labels: labels})
		}
	}
	return out, nil
}
