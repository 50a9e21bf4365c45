package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// tableAccept asks the API server for its Table rendering of a list (the
// CRD's print columns), exactly what kubectl get asks for.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"

// policyResource is the plural resource name of TenantPurchasePolicy.
const policyResource = "tenantpurchasepolicies"

// kubectl's tabwriter settings (k8s.io/cli-runtime printers): minimum cell
// width 6, tab width 4, padding 3, padded with spaces.
const (
	tabMinWidth = 6
	tabWidth    = 4
	tabPadding  = 3
)

// tableClient returns a REST client for the policy API group.
func tableClient(cfg *rest.Config) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &v1.GroupVersion
	c.APIPath = "/apis"
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	return rest.RESTClientFor(c)
}

// fetchPolicyTable lists the policies of every namespace as the API
// server's Table.
func fetchPolicyTable(ctx context.Context, rc *rest.RESTClient) (*metav1.Table, error) {
	return fetchTable(ctx, rc, policyResource)
}

// fetchTable lists a resource of the API group in every namespace as the
// API server's Table.
func fetchTable(ctx context.Context, rc *rest.RESTClient, resource string) (*metav1.Table, error) {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	raw, err := rc.Get().Resource(resource).SetHeader("Accept", tableAccept).Do(ctx).Raw()
	if err != nil {
		return nil, fmt.Errorf("listing %s as a table: %w", resource, err)
	}
	return decodeTable(raw)
}

// decodeTable decodes a Table, keeping numbers as the server wrote them.
func decodeTable(raw []byte) (*metav1.Table, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var t metav1.Table
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("decoding table: %w", err)
	}
	if t.Kind != "Table" {
		return nil, fmt.Errorf("the API server answered a %q, not a Table", t.Kind)
	}
	return &t, nil
}

// renderTable writes t the way `kubectl get` prints a server-side table:
// upper-case headers, columns aligned by kubectl's tabwriter settings, wide
// (priority > 0) columns left out, empty cells for missing values and, with
// allNamespaces (kubectl get -A), a NAMESPACE column first. Dates arrive
// already humanised by the server (e.g. 12s, 3m).
func renderTable(w io.Writer, t *metav1.Table, allNamespaces bool) error {
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(w, "No resources found")
		return err
	}
	tw := tabwriter.NewWriter(w, tabMinWidth, tabWidth, tabPadding, ' ', 0)
	var header []string
	if allNamespaces {
		header = append(header, "NAMESPACE")
	}
	for _, c := range t.ColumnDefinitions {
		if c.Priority == 0 {
			header = append(header, strings.ToUpper(c.Name))
		}
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, row := range t.Rows {
		fmt.Fprintln(tw, strings.Join(rowCells(t.ColumnDefinitions, row, allNamespaces), "\t"))
	}
	return tw.Flush()
}

// rowCells formats one row's visible cells.
func rowCells(cols []metav1.TableColumnDefinition, row metav1.TableRow, allNamespaces bool) []string {
	var cells []string
	if allNamespaces {
		cells = append(cells, rowNamespace(row))
	}
	for i, cell := range row.Cells {
		if i >= len(cols) {
			break // more cells than columns: kubectl ignores the extra ones
		}
		if cols[i].Priority != 0 {
			continue
		}
		cells = append(cells, formatCell(cell))
	}
	return cells
}

// rowNamespace reads the namespace from the row's object metadata.
func rowNamespace(row metav1.TableRow) string {
	if len(row.Object.Raw) == 0 {
		return ""
	}
	var m metav1.PartialObjectMetadata
	if err := json.Unmarshal(row.Object.Raw, &m); err != nil {
		return ""
	}
	return m.Namespace
}

// formatCell prints a cell as kubectl does: nothing for a missing value, a
// line break cut with "...".
func formatCell(cell any) string {
	if cell == nil {
		return ""
	}
	s, ok := cell.(string)
	if !ok {
		s = fmt.Sprint(cell)
	}
	if i := strings.IndexAny(s, "\f\n\r"); i >= 0 {
		s = s[:i] + "..."
	}
	return s
}
