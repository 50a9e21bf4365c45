package v1alpha1_test

import (
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
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

// TestStatusBounds keeps the bounds the controller trims status to
// (v1.Max*, bounds.go) equal to the ones the API server enforces: a
// constant that drifted from its marker would let a status patch fail with
// 422 (or trim for nothing).
func TestStatusBounds(t *testing.T) {
	root := readCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema
	maxItems := map[string]int{
		"status.products":                  v1.MaxProducts,
		"status.offerTypes":                v1.MaxOfferTypes,
		"status.driftHistory":              v1.MaxDriftHistory,
		"status.subscriptions.selfService": v1.MaxSelfService,
		"status.subscriptions.handovers":   v1.MaxHandovers,
		"status.conditions":                v1.MaxConditions,
	}
	for path, want := range maxItems {
		if got := schemaAt(t, root, path).MaxItems; got == nil || *got != int64(want) {
			t.Errorf("%s: maxItems %v in the CRD, %d in bounds.go", path, got, want)
		}
	}
	maxLength := map[string]int{
		"status.products[].productID":                      v1.MaxIDLength,
		"status.products[].name":                           v1.MaxNameLength,
		"status.products[].observed":                       v1.MaxValueLength,
		"status.products[].adoptedValue":                   v1.MaxValueLength,
		"status.products[].pendingValue":                   v1.MaxValueLength,
		"status.products[].rejected":                       v1.MaxRejectedLength,
		"status.offerTypes[].productID":                    v1.MaxIDLength,
		"status.offerTypes[].name":                         v1.MaxNameLength,
		"status.driftHistory[].productID":                  v1.MaxIDLength,
		"status.driftHistory[].expected":                   v1.MaxValueLength,
		"status.driftHistory[].found":                      v1.MaxValueLength,
		"status.subscriptions.selfService[].id":            v1.MaxIDLength,
		"status.subscriptions.selfService[].skuID":         v1.MaxIDLength,
		"status.subscriptions.selfService[].buyerID":       v1.MaxIDLength,
		"status.subscriptions.selfService[].skuPartNumber": v1.MaxSkuPartNumberLength,
		"status.subscriptions.selfService[].status":        v1.MaxSubscriptionStatusLength,
		"status.subscriptions.handovers[].subscriptionID":  v1.MaxIDLength,
		"status.subscriptions.handovers[].buyerID":         v1.MaxIDLength,
		"status.subscriptions.handovers[].skuPartNumber":   v1.MaxSkuPartNumberLength,
		"status.subscriptions.handovers[].evidence":        v1.MaxEvidenceLength,
		"status.conditions[].message":                      v1.MaxConditionMessage,
		"status.lastHandledReconcileAt":                    v1.MaxRequestedAtLength,
	}
	for path, want := range maxLength {
		if got := schemaAt(t, root, path).MaxLength; got == nil || *got != int64(want) {
			t.Errorf("%s: maxLength %v in the CRD, %d in bounds.go", path, got, want)
		}
	}
}
