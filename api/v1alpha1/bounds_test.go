package v1alpha1_test

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// TestClientBoundsMatchCRD: the Microsoft clients bound what they return
// with constants of their own (internal/m365 does not import the API); they
// must equal the CRD's maxLength of the status fields the values are copied
// into, or a value the client let through makes every status patch fail.
func TestClientBoundsMatchCRD(t *testing.T) {
	root := readCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema
	cases := map[string]int{
		"status.products[].productID":                      m365.MaxIDLength,
		"status.products[].name":                           m365.MaxNameLength,
		"status.products[].observed":                       m365.MaxValueLength,
		"status.products[].adoptedValue":                   m365.MaxValueLength,
		"status.offerTypes[].productID":                    m365.MaxIDLength,
		"status.offerTypes[].name":                         m365.MaxNameLength,
		"status.subscriptions.selfService[].id":            m365.MaxIDLength,
		"status.subscriptions.selfService[].skuID":         m365.MaxIDLength,
		"status.subscriptions.selfService[].buyerID":       m365.MaxIDLength,
		"status.subscriptions.selfService[].skuPartNumber": m365.MaxSkuPartNumberLength,
		"status.subscriptions.selfService[].status":        m365.MaxStatusLength,
		"status.subscriptions.handovers[].subscriptionID":  m365.MaxIDLength,
		"status.subscriptions.handovers[].skuPartNumber":   m365.MaxSkuPartNumberLength,
	}
	for path, want := range cases {
		t.Run(path, func(t *testing.T) {
			s := schemaAt(t, root, path)
			if s.MaxLength == nil || int(*s.MaxLength) != want {
				t.Errorf("%s: CRD maxLength %v, the clients bound it to %d", path, s.MaxLength, want)
			}
		})
	}
}

// schemaAt walks a dotted path; "x[]" steps into the items of array x.
func schemaAt(t *testing.T, s *apiextensionsv1.JSONSchemaProps, path string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	for _, part := range strings.Split(path, ".") {
		name, array := strings.CutSuffix(part, "[]")
		child, ok := s.Properties[name]
		if !ok {
			t.Fatalf("%s: no field %q", path, name)
		}
		s = &child
		if array {
			if s.Items == nil || s.Items.Schema == nil {
				t.Fatalf("%s: %q is not an array", path, name)
			}
			s = s.Items.Schema
		}
	}
	return s
}
