package v1alpha1_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TestSetTemplateValidatesLikeAPolicy: a set's template is a policy's spec
// without tenantID, so every child the API server accepts in a set it
// would accept as a policy, with the same defaults, rules and messages.
// Both come from one Go type; this holds the generated CRDs to it.
func TestSetTemplateValidatesLikeAPolicy(t *testing.T) {
	policy := schemaAt(t, readCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema, "spec")
	tpl := schemaAt(t, readCRDOf(t, "tenantpurchasepolicysets").Spec.Versions[0].Schema.OpenAPIV3Schema, "spec.template")

	want := without(policy.Properties, "tenantID")
	got := without(tpl.Properties, "tenantID")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec.template differs from a policy's spec (-policy +template):\n%s", diff)
	}
	var required []string
	for _, r := range policy.Required {
		if r != "tenantID" {
			required = append(required, r)
		}
	}
	if diff := cmp.Diff(required, tpl.Required); diff != "" {
		t.Errorf("required fields (-policy +template):\n%s", diff)
	}
	if n := len(tpl.XValidations); n != 1 || tpl.XValidations[0].Rule != "!has(self.tenantID)" {
		t.Errorf("the template's own rules are %v, want only the refusal of tenantID", tpl.XValidations)
	}
}

// TestSetTenantIDsShareOneRule: every tenant ID a set names (listed,
// partner, excluded) is a lower-case GUID by the same rule.
func TestSetTenantIDsShareOneRule(t *testing.T) {
	root := readCRDOf(t, "tenantpurchasepolicysets").Spec.Versions[0].Schema.OpenAPIV3Schema
	var rules []string
	for _, path := range []string{"spec.tenants[].tenantID", "spec.discovery.delegatedAdminCustomers.partnerTenantID"} {
		s := schemaAt(t, root, path)
		if len(s.XValidations) != 1 {
			t.Fatalf("%s has %d rules, want 1", path, len(s.XValidations))
		}
		rules = append(rules, s.XValidations[0].Rule)
	}
	exclude := schemaAt(t, root, "spec.discovery.delegatedAdminCustomers.exclude").Items.Schema
	rules = append(rules, exclude.XValidations[0].Rule)
	const want = "self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')"
	for i, r := range rules {
		if r != want {
			t.Errorf("rule %d is %q, want %q", i, r, want)
		}
	}
}

func without(m map[string]apiextensionsv1.JSONSchemaProps, key string) map[string]apiextensionsv1.JSONSchemaProps {
	out := make(map[string]apiextensionsv1.JSONSchemaProps, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}
