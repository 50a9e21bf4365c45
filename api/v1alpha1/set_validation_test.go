package v1alpha1_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// Messages of the set's own CEL rules, as written in the type markers.
const (
	msgSetTenantGUID   = "tenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	msgPartnerGUID     = "partnerTenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	msgExcludeGUID     = "exclude entries must be lower-case GUIDs such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write them in lower case"
	msgTemplateTenant  = "the template applies to many tenants and must not set tenantID: list tenants in spec.tenants or discover them with spec.discovery"
	msgChildName       = "name must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	msgNoTenants       = "a set needs tenants, discovery or both"
	msgSetLabelReserve = "childLabels must not set commerce.tenantpolicy.io/set: the controller sets it to the set's name"
	msgLabelKey        = "childLabels keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'"
	msgDiscoveryEvery  = "interval must be at least 5m"
	msgSetName         = "a set's name must be at most 63 characters: it is the value of the label commerce.tenantpolicy.io/set on every child"

	partnerID = "5b2e7c1d-3a4f-4b6c-8d9e-0f1a2b3c4d5e"

	// setsPath is the REST collection path of the sets in a namespace.
	setsPath = "/apis/commerce.tenantpolicy.io/v1alpha1/namespaces/%s/tenantpurchasepolicysets"
)

// newSet returns a valid set that uses most of the spec: a template (a
// policy's spec without tenantID), a listed tenant with overrides, and
// discovery.
func newSet(namespace, name string) *unstructured.Unstructured {
	tpl := newPolicy(namespace, name, tenantA).Object["spec"].(map[string]any)
	delete(tpl, "tenantID")
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"template": tpl,
			"tenants": items(map[string]any{
				"tenantID": tenantA, "name": "contoso",
				"overrides": map[string]any{"mode": "Observe", "default": "Unmanaged", "suspend": false,
					"products":      items(product(powerBI, "Enabled"), product(copilot, "Unmanaged")),
					"offerTypes":    items(offer("SaaS", "Enabled")),
					"subscriptions": map[string]any{"track": false}},
			}),
			"discovery": map[string]any{"delegatedAdminCustomers": map[string]any{
				"partnerTenantID": partnerID,
				"auth":            map[string]any{"clientID": clientID, "refreshTokenRef": map[string]any{"name": "partner-admin", "key": "refreshToken"}},
				"exclude":         []any{tenantB},
				"interval":        "2h",
			}},
			"childLabels": map[string]any{"shard": "a", "example.com/team": "partners"},
			"prune":       true,
		},
	}}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("TenantPurchasePolicySet"))
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// onFirstTenant applies m to the first entry of spec.tenants.
func onFirstTenant(m mutation) mutation {
	return func(obj map[string]any) {
		tenants, _, err := unstructured.NestedSlice(obj, "spec", "tenants")
		Expect(err).NotTo(HaveOccurred())
		m(tenants[0].(map[string]any))
		Expect(unstructured.SetNestedSlice(obj, tenants, "spec", "tenants")).To(Succeed())
	}
}

// manyTenants returns n listed tenants with distinct lower-case GUIDs.
func manyTenants(n int) []any {
	out := make([]any, 0, n)
	for i := range n {
		out = append(out, map[string]any{"tenantID": fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)})
	}
	return out
}

var _ = Describe("TenantPurchasePolicySet schema", func() {
	var ns string

	BeforeEach(func(ctx SpecContext) {
		ns = createNamespace(ctx)
	}, NodeTimeout(specTimeout))

	It("accepts the valid set every rejected case starts from", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, newSet(ns, "valid"), client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
	}, NodeTimeout(specTimeout))

	DescribeTable("rejects an invalid set with a message that names the problem",
		func(specCtx SpecContext, mutate mutation, field, message string) {
			ctx, cancel := withTimeout(specCtx)
			defer cancel()
			obj := newSet(ns, "invalid")
			mutate(obj.Object)
			expectInvalid(k8sClient.Create(ctx, obj), field, message)
		},

		// the template is a policy's spec, validated alike
		Entry("template with a tenantID", set(tenantA, "spec", "template", "tenantID"),
			"spec.template.tenantID", msgTemplateTenant),
		Entry("template auth without a method", remove("spec", "template", "auth", "clientSecretRef"),
			"spec.template.auth", msgOneAuth),
		Entry("template clientID that is not a GUID", set("partner-app", "spec", "template", "auth", "clientID"),
			"spec.template.auth.clientID", msgClientGUID),
		Entry("template product ID in lower case", set(items(product("cfq7ttc0mm8r", "Disabled")), "spec", "template", "products"),
			"spec.template.products[0].productID", msgProductID),
		Entry("template interval under a minute", set("30s", "spec", "template", "interval"),
			"spec.template.interval", msgInterval),
		Entry("template without default", remove("spec", "template", "default"),
			"spec.template.default", "Required value"),
		Entry("missing template", remove("spec", "template"),
			"spec.template", "Required value"),

		// listed tenants
		Entry("tenant ID in upper case", set(items(map[string]any{"tenantID": strings.ToUpper(tenantA)}), "spec", "tenants"),
			"spec.tenants[0].tenantID", msgSetTenantGUID),
		Entry("tenant ID that is not a GUID", set(items(map[string]any{"tenantID": "contoso.onmicrosoft.com"}), "spec", "tenants"),
			"spec.tenants[0].tenantID", msgSetTenantGUID),
		Entry("the same tenant twice", set(items(map[string]any{"tenantID": tenantA}, map[string]any{"tenantID": tenantA, "name": "other"}), "spec", "tenants"),
			"spec.tenants[1]", fmt.Sprintf(`Duplicate value: {"tenantID":%q}`, tenantA)),
		Entry("more than 5000 tenants", set(manyTenants(5001), "spec", "tenants"),
			"spec.tenants", "must have at most 5000 items"),
		Entry("a child name that is not a DNS label", set(items(map[string]any{"tenantID": tenantA, "name": "Contoso_EU"}), "spec", "tenants"),
			"spec.tenants[0].name", msgChildName),
		Entry("override mode that is not a mode", onFirstTenant(set("DryRun", "overrides", "mode")),
			"spec.tenants[0].overrides.mode", `Unsupported value: "DryRun": supported values: "Enforce", "Observe"`),
		Entry("override product rule as a policy's is checked", onFirstTenant(set(items(product(copilot, "enabled")), "overrides", "products")),
			"spec.tenants[0].overrides.products[0].policy", `Unsupported value: "enabled": `+rulePolicyEnum),
		Entry("override with the same product twice", onFirstTenant(set(items(product(copilot, "Disabled"), product(copilot, "Enabled")), "overrides", "products")),
			"spec.tenants[0].overrides.products[1]", `Duplicate value: {"productID":"CFQ7TTC0MM8R"}`),
		Entry("no tenants and no discovery", func(obj map[string]any) {
			remove("spec", "tenants")(obj)
			remove("spec", "discovery")(obj)
		}, "spec", msgNoTenants),

		// discovery
		Entry("partner tenant ID in upper case", set(strings.ToUpper(partnerID), "spec", "discovery", "delegatedAdminCustomers", "partnerTenantID"),
			"spec.discovery.delegatedAdminCustomers.partnerTenantID", msgPartnerGUID),
		Entry("missing partner tenant ID", remove("spec", "discovery", "delegatedAdminCustomers", "partnerTenantID"),
			"spec.discovery.delegatedAdminCustomers.partnerTenantID", "Required value"),
		Entry("discovery auth with two methods", set(map[string]any{"serviceAccountName": "partner"}, "spec", "discovery", "delegatedAdminCustomers", "auth", "workloadIdentity"),
			"spec.discovery.delegatedAdminCustomers.auth", msgOneAuth),
		Entry("an excluded tenant in upper case", set([]any{strings.ToUpper(tenantB)}, "spec", "discovery", "delegatedAdminCustomers", "exclude"),
			"spec.discovery.delegatedAdminCustomers.exclude[0]", msgExcludeGUID),
		Entry("discovery more often than every 5 minutes", set("1m", "spec", "discovery", "delegatedAdminCustomers", "interval"),
			"spec.discovery.delegatedAdminCustomers.interval", msgDiscoveryEvery),
		Entry("discovery without a source", remove("spec", "discovery", "delegatedAdminCustomers"),
			"spec.discovery.delegatedAdminCustomers", "Required value"),
		Entry("maxDropPercent over 100", set(int64(101), "spec", "discovery", "maxDropPercent"),
			"spec.discovery.maxDropPercent", "should be less than or equal to 100"),

		// child labels
		Entry("childLabels setting the set label", set("other", "spec", "childLabels", v1.SetLabel),
			"spec.childLabels", msgSetLabelReserve),
		Entry("childLabels key with a space", set("x", "spec", "childLabels", "my shard"),
			"spec.childLabels", msgLabelKey),
		Entry("childLabels value that is not a label value", set("a b", "spec", "childLabels", "shard"),
			"spec.childLabels.shard", `should match '^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$'`),
		Entry("childLabels value over 63 characters", set(strings.Repeat("a", 64), "spec", "childLabels", "shard"),
			"spec.childLabels.shard", "may not be more than 63 bytes"),
	)

	It("refuses a set name longer than a label value", func(ctx SpecContext) {
		err := k8sClient.Create(ctx, newSet(ns, strings.Repeat("s", 64)))
		Expect(err).To(MatchError(ContainSubstring(msgSetName)))
		Expect(k8sClient.Create(ctx, newSet(ns, strings.Repeat("s", 63)))).To(Succeed())
	}, NodeTimeout(specTimeout))

	DescribeTable("limits overrides to mode, default, products, offerTypes, subscriptions and suspend",
		func(specCtx SpecContext, field string, value any) {
			ctx, cancel := withTimeout(specCtx)
			defer cancel()
			obj := newSet(ns, "overrides")
			onFirstTenant(set(value, "overrides", field))(obj.Object)
			err := k8sClient.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))
			Expect(err).To(MatchError(ContainSubstring(fmt.Sprintf(`unknown field "spec.tenants[0].overrides.%s"`, field))))
		},
		Entry("auth", "auth", map[string]any{"clientID": clientID, "clientSecretRef": map[string]any{"name": "other", "key": "secret"}}),
		Entry("interval", "interval", "1m"),
		Entry("deletionPolicy", "deletionPolicy", "Restore"),
		Entry("tenantID", "tenantID", tenantB),
	)

	It("fills in the defaults of the set and of its template, and marks the status as not yet observed", func(ctx SpecContext) {
		obj := newSet(ns, "minimal")
		obj.Object["spec"] = map[string]any{
			"template": map[string]any{
				"auth":    map[string]any{"clientID": clientID, "clientSecretRef": map[string]any{"name": "partner-app", "key": "clientSecret"}},
				"default": "Disabled",
			},
			"discovery": map[string]any{"delegatedAdminCustomers": map[string]any{"partnerTenantID": partnerID}},
		}
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())
		got := &v1.TenantPurchasePolicySet{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		Expect(got.Spec.Prune).To(HaveValue(BeTrue()))
		Expect(got.Spec.Suspend).To(BeFalse())
		Expect(got.Spec.Discovery.DelegatedAdminCustomers.Interval).To(Equal(metav1.Duration{Duration: time.Hour}))
		Expect(got.Spec.Discovery.MaxDropPercent).To(HaveValue(BeEquivalentTo(20)))
		Expect(got.Spec.Discovery.MaxDropCount).To(HaveValue(BeEquivalentTo(2)))
		tpl := got.Spec.Template
		Expect(tpl.Mode).To(Equal(v1.ModeEnforce))
		Expect(tpl.Interval).To(Equal(metav1.Duration{Duration: 15 * time.Minute}))
		Expect(tpl.DeletionPolicy).To(Equal(v1.DeletionOrphan))
		Expect(tpl.Subscriptions.Track).To(HaveValue(BeTrue()))
		Expect(got.Status.ObservedGeneration).To(Equal(int64(-1)))
		for _, count := range []string{"tenants", "ready", "drifted", "stalled", "inConflict", "suspended", "selfServiceSubscriptions"} {
			v, found, err := unstructured.NestedInt64(obj.Object, "status", "summary", count)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue(), "status.summary.%s is not defaulted", count)
			Expect(v).To(BeZero())
		}
	}, NodeTimeout(specTimeout))

	It("prints the columns kubectl get tpps shows", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, newSet(ns, "baseline"))).To(Succeed())
		table := tableAt(ctx, fmt.Sprintf(setsPath, ns))
		var columns []string
		for _, c := range table.ColumnDefinitions {
			columns = append(columns, c.Name)
		}
		Expect(columns).To(Equal([]string{"Name", "Tenants", "Ready", "Drifted", "Self-Service", "Last Discovery", "Age"}))
		Expect(table.Rows).To(HaveLen(1))
		Expect(table.Rows[0].Cells[:5]).To(Equal([]any{"baseline", float64(0), float64(0), float64(0), float64(0)}))
	}, NodeTimeout(specTimeout))
})
