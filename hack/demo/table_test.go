package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// serverTable is a Table as the API server sends it for `kubectl get tpp -A`
// (trimmed to the parts the renderer reads).
const serverTable = `{
  "kind": "Table", "apiVersion": "meta.k8s.io/v1",
  "columnDefinitions": [
    {"name": "Name", "type": "string", "format": "name", "priority": 0},
    {"name": "Tenant", "type": "string", "priority": 0},
    {"name": "Drifted", "type": "integer", "priority": 0},
    {"name": "Detail", "type": "string", "priority": 1},
    {"name": "Last Sync", "type": "date", "priority": 0}
  ],
  "rows": [
    {"cells": ["contoso", "72f988bf", null, "wide only", "12s"],
     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "contoso", "namespace": "m365"}}},
    {"cells": ["fabrikam-eu", "0b6c7f3e", 12, "x", "3m"],
     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "fabrikam-eu", "namespace": "partners"}}}
  ]
}`

func TestRenderTable(t *testing.T) {
	cases := map[string]struct {
		reason        string
		table         string
		allNamespaces bool
		want          string
	}{
		"all namespaces": {
			reason:        "kubectl get -A puts NAMESPACE first, upper-cases headers, hides priority>0 columns and prints nothing for a missing value",
			table:         serverTable,
			allNamespaces: true,
			want: "" +
				"NAMESPACE   NAME          TENANT     DRIFTED   LAST SYNC\n" +
				"m365        contoso       72f988bf             12s\n" +
				"partners    fabrikam-eu   0b6c7f3e   12        3m\n",
		},
		"one namespace": {
			reason: "without -A there is no NAMESPACE column; short columns are padded to kubectl's minimum width",
			table:  serverTable,
			want: "" +
				"NAME          TENANT     DRIFTED   LAST SYNC\n" +
				"contoso       72f988bf             12s\n" +
				"fabrikam-eu   0b6c7f3e   12        3m\n",
		},
		"multi-line cell": {
			reason: "kubectl cuts a cell at its first line break and adds ...",
			table: `{"kind": "Table", "columnDefinitions": [{"name": "Name", "type": "string"}, {"name": "Msg", "type": "string"}],
			  "rows": [{"cells": ["a", "first\nsecond"]}]}`,
			want: "" +
				"NAME   MSG\n" +
				"a      first...\n",
		},
		"no rows": {
			reason: "an empty list prints what kubectl prints",
			table:  `{"kind": "Table", "columnDefinitions": [{"name": "Name", "type": "string"}], "rows": []}`,
			want:   "No resources found\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			table, err := decodeTable([]byte(tc.table))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := renderTable(&out, table, tc.allNamespaces); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDecodeTableRejectsAList(t *testing.T) {
	// A server that ignores the Table Accept header answers the plain list;
	// the demo must say so rather than print an empty table.
	_, err := decodeTable([]byte(`{"kind": "TenantPurchasePolicyList", "items": []}`))
	if err == nil || !strings.Contains(err.Error(), "not a Table") {
		t.Fatalf("decodeTable(list) error = %v, want one saying it is not a Table", err)
	}
}
