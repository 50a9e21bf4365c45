package v1alpha1_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// readCRD reads the generated CRD of TenantPurchasePolicy.
func readCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	return readCRDOf(t, "tenantpurchasepolicies")
}

// readCRDOf reads the generated CRD of a resource (its plural).
func readCRDOf(t *testing.T, plural string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "commerce.tenantpolicy.io_"+plural+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	return &crd
}

// TestEveryCRDFieldIsDocumented keeps `kubectl explain` useful: every field
// of the generated CRDs carries a description (metadata is Kubernetes' own).
func TestEveryCRDFieldIsDocumented(t *testing.T) {
	for _, plural := range []string{"tenantpurchasepolicies", "tenantpurchasepolicysets"} {
		t.Run(plural, func(t *testing.T) { expectDocumented(t, readCRDOf(t, plural)) })
	}
}

func expectDocumented(t *testing.T, crd *apiextensionsv1.CustomResourceDefinition) {
	var undocumented []string
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		for name, child := range s.Properties {
			p := path + "." + name
			if child.Description == "" && p != ".metadata" {
				undocumented = append(undocumented, p)
			}
			walk(p, &child)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", s.Items.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		walk("", v.Schema.OpenAPIV3Schema)
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("fields without a description (add a doc comment to the type in api/v1alpha1): %v", undocumented)
	}
}
