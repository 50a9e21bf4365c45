package v1alpha1_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const (
	// specTimeout bounds every spec; each talks to a local API server only.
	specTimeout = 20 * time.Second

	tenantA  = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenantB  = "0b6c7f3e-5d2a-4c4e-9a51-2f1f0c9d8e7a"
	clientID = "11111111-2222-3333-4444-555555555555"
	copilot  = "CFQ7TTC0MM8R"
	powerBI  = "CFQ7TTC0H9MP"

	samplesGlob = "../../config/samples/*.yaml"

	// tableAccept asks the API server for the server-side Table that kubectl get prints.
	tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

	// resourcePath is the REST collection path of the policies in a namespace.
	resourcePath = "/apis/commerce.tenantpolicy.io/v1alpha1/namespaces/%s/tenantpurchasepolicies"
)

// Messages of the CEL rules, as written in the type markers.
const (
	msgTenantGUID  = "tenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	msgClientGUID  = "clientID must be a GUID such as 11111111-2222-3333-4444-555555555555"
	msgOneAuth     = "auth must set exactly one of clientSecretRef, clientCertificateRef, workloadIdentity or refreshTokenRef"
	msgProductID   = "productID must be 12 upper-case letters or digits, e.g. CFQ7TTC0MM8R"
	msgInterval    = "interval must be at least 1m"
	msgFullRefund  = "fullRefundWindow must be between 0s and 720h (30 days)"
	msgProrated    = "proratedRefundWindow must be between 0s and 720h (30 days)"
	msgRefundOrder = "proratedRefundWindow must be at least fullRefundWindow"
	// msgHMS: the subscriptions durations are Go durations (h, m, s), which
	// the controller can read; "7d" passes the API server's duration format.
	msgHMS          = "should match '^-?([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$'"
	msgImmutable    = "tenantID is immutable; create a new TenantPurchasePolicy for another tenant"
	msgSecretName   = `should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'`
	rulePolicyEnum  = `supported values: "Enabled", "Disabled", "OnlyTrialsWithoutPaymentMethod", "Unmanaged"`
	offerPolicyEnum = `supported values: "Enabled", "Disabled", "OnlyTrialsWithoutPaymentMethod"`
	// settingPolicyEnum: a tenant setting is Enabled, Disabled or Unmanaged.
	settingPolicyEnum = `supported values: "Enabled", "Disabled", "Unmanaged"`
)

// mutation changes a valid policy (its unstructured content) into the case under test.
type mutation func(obj map[string]any)

// set puts value at path, creating the maps on the way.
func set(value any, path ...string) mutation {
	return func(obj map[string]any) {
		Expect(unstructured.SetNestedField(obj, value, path...)).To(Succeed())
	}
}

// remove deletes the field at path.
func remove(path ...string) mutation {
	return func(obj map[string]any) { unstructured.RemoveNestedField(obj, path...) }
}

// product is one entry of spec.products.
func product(id, policy string) map[string]any {
	return map[string]any{"productID": id, "policy": policy}
}

// offer is one entry of spec.offerTypes.
func offer(offerType, policy string) map[string]any {
	return map[string]any{"offerType": offerType, "policy": policy}
}

// items makes a JSON list out of maps.
func items(entries ...map[string]any) []any {
	out := make([]any, 0, len(entries))
	for _, e := range entries {
		out = append(out, e)
	}
	return out
}

// manyProducts returns n rules with distinct valid product IDs.
func manyProducts(n int) []any {
	out := make([]any, 0, n)
	for i := range n {
		out = append(out, product(fmt.Sprintf("CFQ7TTC%05d", i), "Disabled"))
	}
	return out
}

// newPolicy returns a valid policy that uses most of the spec, as an
// unstructured object so tests can write values the Go types cannot express.
func newPolicy(namespace, name, tenantID string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"tenantID": tenantID,
			"auth": map[string]any{
				"clientID":        clientID,
				"clientSecretRef": map[string]any{"name": "contoso-app", "key": "clientSecret"},
			},
			"default":    "Disabled",
			"products":   items(product(copilot, "OnlyTrialsWithoutPaymentMethod"), product(powerBI, "Unmanaged")),
			"offerTypes": items(offer("SaaS", "Disabled")),
		},
	}}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("TenantPurchasePolicy"))
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// minimalPolicy returns a policy with only the required fields set.
func minimalPolicy(namespace, name string) *unstructured.Unstructured {
	u := newPolicy(namespace, name, tenantA)
	u.Object["spec"] = map[string]any{
		"tenantID": tenantA,
		"auth": map[string]any{
			"clientID":         clientID,
			"workloadIdentity": map[string]any{"serviceAccountName": "m365-contoso"},
		},
		"default": "Disabled",
	}
	return u
}

// createNamespace creates a namespace of its own for one spec and returns its
// name. envtest runs no namespace controller, so namespaces are not deleted.
func createNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tpp-schema-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// ensureNamespace creates the named namespace unless it exists.
func ensureNamespace(ctx context.Context, name string) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8sClient.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// skippedRulesNotice is the cause the API server adds when schema errors kept
// it from evaluating the CEL rules; it names no field and no problem.
const skippedRulesNotice = "some validation rules were not checked"

// causes returns the field causes of an API error, without the notice about
// skipped rules, or nil when it has none.
func causes(err error) []metav1.StatusCause {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var out []metav1.StatusCause
	for _, c := range status.Status().Details.Causes {
		if strings.Contains(c.Message, skippedRulesNotice) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// haveCause matches a status cause on field whose message contains message.
func haveCause(field, message string) gomegatypes.GomegaMatcher {
	return And(
		HaveField("Field", field),
		HaveField("Message", ContainSubstring(message)),
	)
}

// expectInvalid asserts err is the API server's 422 Invalid whose only cause
// is on field and says message: the object was rejected for that reason alone.
func expectInvalid(err error, field, message string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the API server accepted the object")
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want an Invalid error, got: %v", err)
	Expect(causes(err)).To(ConsistOf(haveCause(field, message)), "error: %v", err)
}

// withTimeout bounds one table entry; DescribeTable itself takes no NodeTimeout.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, specTimeout)
}

// sampleEntries lists one table entry per sample manifest.
func sampleEntries() []TableEntry {
	paths, err := filepath.Glob(samplesGlob)
	if err != nil {
		return nil
	}
	var entries []TableEntry
	for _, p := range paths {
		if filepath.Base(p) == "kustomization.yaml" {
			continue
		}
		entries = append(entries, Entry(filepath.Base(p), p))
	}
	return entries
}

var _ = Describe("TenantPurchasePolicy schema", func() {
	var ns string

	BeforeEach(func(ctx SpecContext) {
		ns = createNamespace(ctx)
	}, NodeTimeout(specTimeout))

	It("accepts the valid policy every rejected case starts from", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, newPolicy(ns, "valid", tenantA), client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
	}, NodeTimeout(specTimeout))

	DescribeTable("rejects an invalid policy with a message that names the problem",
		func(specCtx SpecContext, mutate mutation, field, message string) {
			ctx, cancel := withTimeout(specCtx)
			defer cancel()
			obj := newPolicy(ns, "invalid", tenantA)
			mutate(obj.Object)
			expectInvalid(k8sClient.Create(ctx, obj), field, message)
		},

		// identity
		Entry("tenantID that is not a GUID", set("contoso.onmicrosoft.com", "spec", "tenantID"),
			"spec.tenantID", msgTenantGUID),
		Entry("tenantID that is a GUID with a missing digit", set("72f988bf-86f1-41af-91ab-2d7cd011db4", "spec", "tenantID"),
			"spec.tenantID", msgTenantGUID),
		Entry("tenantID in upper case", set(strings.ToUpper(tenantA), "spec", "tenantID"),
			"spec.tenantID", msgTenantGUID),
		Entry("tenantID in mixed case", set("72F988bf-86f1-41af-91ab-2d7cd011db47", "spec", "tenantID"),
			"spec.tenantID", msgTenantGUID),
		Entry("missing tenantID", remove("spec", "tenantID"),
			"spec.tenantID", "Required value"),

		// auth
		Entry("clientID that is not a GUID", set("contoso-app", "spec", "auth", "clientID"),
			"spec.auth.clientID", msgClientGUID),
		Entry("missing clientID", remove("spec", "auth", "clientID"),
			"spec.auth.clientID", "Required value"),
		Entry("auth without a method", remove("spec", "auth", "clientSecretRef"),
			"spec.auth", msgOneAuth),
		Entry("auth with two methods", set(map[string]any{"serviceAccountName": "m365"}, "spec", "auth", "workloadIdentity"),
			"spec.auth", msgOneAuth),
		Entry("auth with all four methods", func(obj map[string]any) {
			set(map[string]any{"serviceAccountName": "m365"}, "spec", "auth", "workloadIdentity")(obj)
			set(map[string]any{"name": "cert"}, "spec", "auth", "clientCertificateRef")(obj)
			set(map[string]any{"name": "token", "key": "refreshToken"}, "spec", "auth", "refreshTokenRef")(obj)
		}, "spec.auth", msgOneAuth),
		Entry("missing auth", remove("spec", "auth"),
			"spec.auth", "Required value"),
		Entry("secret name that is not a DNS subdomain", set("Contoso_App", "spec", "auth", "clientSecretRef", "name"),
			"spec.auth.clientSecretRef.name", msgSecretName),
		Entry("secret key with a space", set("client secret", "spec", "auth", "clientSecretRef", "key"),
			"spec.auth.clientSecretRef.key", `should match '^[-._a-zA-Z0-9]+$'`),
		Entry("secret ref without a key", remove("spec", "auth", "clientSecretRef", "key"),
			"spec.auth.clientSecretRef.key", "Required value"),
		Entry("certificate secret name with upper case", func(obj map[string]any) {
			remove("spec", "auth", "clientSecretRef")(obj)
			set(map[string]any{"name": "Partner-Cert"}, "spec", "auth", "clientCertificateRef")(obj)
		}, "spec.auth.clientCertificateRef.name", msgSecretName),
		Entry("ServiceAccount name that is not a DNS subdomain", func(obj map[string]any) {
			remove("spec", "auth", "clientSecretRef")(obj)
			set(map[string]any{"serviceAccountName": "m365/northwind"}, "spec", "auth", "workloadIdentity")(obj)
		}, "spec.auth.workloadIdentity.serviceAccountName", msgSecretName),

		// policies
		Entry("missing default", remove("spec", "default"),
			"spec.default", "Required value"),
		Entry("default that is not a policy", set("Blocked", "spec", "default"),
			"spec.default", `Unsupported value: "Blocked": `+rulePolicyEnum),
		Entry("product policy that is not a policy", set(items(product(copilot, "enabled")), "spec", "products"),
			"spec.products[0].policy", `Unsupported value: "enabled": `+rulePolicyEnum),
		Entry("product ID in lower case", set(items(product("cfq7ttc0mm8r", "Disabled")), "spec", "products"),
			"spec.products[0].productID", msgProductID),
		Entry("product ID that is too short", set(items(product("CFQ7TTC0", "Disabled")), "spec", "products"),
			"spec.products[0].productID", msgProductID),
		Entry("product ID with a dash", set(items(product("CFQ7-TTC0MM8", "Disabled")), "spec", "products"),
			"spec.products[0].productID", msgProductID),
		Entry("the same product twice", set(items(product(copilot, "Disabled"), product(copilot, "Enabled")), "spec", "products"),
			"spec.products[1]", `Duplicate value: {"productID":"CFQ7TTC0MM8R"}`),
		Entry("more than 256 product rules", set(manyProducts(257), "spec", "products"),
			"spec.products", "must have at most 256 items"),
		Entry("product rule until that is not a time", set(items(map[string]any{"productID": copilot, "policy": "Disabled", "until": "next week"}), "spec", "products"),
			"spec.products[0].until", `must be of type date-time: "next week"`),
		Entry("offer type policy Unmanaged (offer types have no Unmanaged)", set(items(offer("SaaS", "Unmanaged")), "spec", "offerTypes"),
			"spec.offerTypes[0].policy", `Unsupported value: "Unmanaged": `+offerPolicyEnum),
		Entry("unknown offer type", set(items(offer("AzureMarketplace", "Disabled")), "spec", "offerTypes"),
			"spec.offerTypes[0].offerType", `Unsupported value: "AzureMarketplace": supported values: "SaaS", "POWERBIVISUALS", "DYNAMICSCE", "DYNAMICSBC"`),
		Entry("the same offer type twice", set(items(offer("SaaS", "Disabled"), offer("SaaS", "Enabled")), "spec", "offerTypes"),
			"spec.offerTypes[1]", `Duplicate value: {"offerType":"SaaS"}`),

		// tenant settings
		Entry("tenant setting emailBasedSubscriptions Block", set("Block", "spec", "tenantSettings", "emailBasedSubscriptions"),
			"spec.tenantSettings.emailBasedSubscriptions", `Unsupported value: "Block": `+settingPolicyEnum),
		Entry("tenant setting emailVerifiedUsersJoin Off", set("Off", "spec", "tenantSettings", "emailVerifiedUsersJoin"),
			"spec.tenantSettings.emailVerifiedUsersJoin", `Unsupported value: "Off": `+settingPolicyEnum),
		Entry("tenant setting trialsOnBehalfOfOrganization in lower case", set("disabled", "spec", "tenantSettings", "trialsOnBehalfOfOrganization"),
			"spec.tenantSettings.trialsOnBehalfOfOrganization", `Unsupported value: "disabled": `+settingPolicyEnum),
		Entry("tenant setting officeStore OnlyTrialsWithoutPaymentMethod (a product value)", set("OnlyTrialsWithoutPaymentMethod", "spec", "tenantSettings", "officeStore"),
			"spec.tenantSettings.officeStore", `Unsupported value: "OnlyTrialsWithoutPaymentMethod": `+settingPolicyEnum),

		// behaviour
		Entry("mode that is not Enforce or Observe", set("DryRun", "spec", "mode"),
			"spec.mode", `Unsupported value: "DryRun": supported values: "Enforce", "Observe"`),
		Entry("deletionPolicy that is not Orphan or Restore", set("Delete", "spec", "deletionPolicy"),
			"spec.deletionPolicy", `Unsupported value: "Delete": supported values: "Orphan", "Restore"`),
		Entry("interval under a minute", set("30s", "spec", "interval"),
			"spec.interval", msgInterval),
		Entry("interval that is not a duration", set("hourly", "spec", "interval"),
			"spec.interval", `must be of type duration: "hourly"`),
		Entry("refundWarning that is not a duration", set("two hours", "spec", "subscriptions", "refundWarning"),
			"spec.subscriptions.refundWarning", msgHMS),
		Entry("track that is not a boolean", set("yes", "spec", "subscriptions", "track"),
			"spec.subscriptions.track", "must be of type boolean"),
		Entry("fullRefundWindow over 30 days", set("721h", "spec", "subscriptions", "fullRefundWindow"),
			"spec.subscriptions.fullRefundWindow", msgFullRefund),
		Entry("negative proratedRefundWindow", set("-1h", "spec", "subscriptions", "proratedRefundWindow"),
			"spec.subscriptions.proratedRefundWindow", msgProrated),
		Entry("proratedRefundWindow shorter than fullRefundWindow", set(map[string]any{"fullRefundWindow": "48h", "proratedRefundWindow": "24h"}, "spec", "subscriptions"),
			"spec.subscriptions", msgRefundOrder),
		Entry("proratedRefundWindow shorter than the default full window", set("12h", "spec", "subscriptions", "proratedRefundWindow"),
			"spec.subscriptions", msgRefundOrder),
		Entry("proratedRefundWindow in days, which the controller cannot read", set("7d", "spec", "subscriptions", "proratedRefundWindow"),
			"spec.subscriptions.proratedRefundWindow", msgHMS),
		Entry("refundWarning in days", set("1d", "spec", "subscriptions", "refundWarning"),
			"spec.subscriptions.refundWarning", msgHMS),
	)

	It("accepts the refund windows of other billing programs", func(ctx SpecContext) {
		obj := newPolicy(ns, "chile", tenantA)
		Expect(unstructured.SetNestedField(obj.Object, map[string]any{"fullRefundWindow": "0s", "proratedRefundWindow": "240h"}, "spec", "subscriptions")).To(Succeed())
		Expect(k8sClient.Create(ctx, obj)).To(Succeed(), "no full refund, 10 days prorated (Chile)")
		got := &v1.TenantPurchasePolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		Expect(got.Spec.Subscriptions.FullRefundWindow).To(HaveValue(Equal(metav1.Duration{})))
		Expect(got.Spec.Subscriptions.ProratedRefundWindow).To(HaveValue(Equal(metav1.Duration{Duration: 240 * time.Hour})))
	}, NodeTimeout(specTimeout))

	It("keeps a second policy of the same tenant spelled in another case out, so both cannot own it", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, newPolicy(ns, "lower", tenantA))).To(Succeed())
		expectInvalid(k8sClient.Create(ctx, newPolicy(ns, "upper", strings.ToUpper(tenantA))), "spec.tenantID", msgTenantGUID)
		list := &v1.TenantPurchasePolicyList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingFields{"spec.tenantID": tenantA})).To(Succeed())
		Expect(list.Items).To(HaveLen(1), "one policy claims the tenant")
	}, NodeTimeout(specTimeout))

	It("rejects an update that changes tenantID and accepts one that changes something else", func(ctx SpecContext) {
		obj := newPolicy(ns, "contoso", tenantA)
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())

		Expect(unstructured.SetNestedField(obj.Object, "Observe", "spec", "mode")).To(Succeed())
		Expect(k8sClient.Update(ctx, obj)).To(Succeed(), "changing mode must be allowed")

		Expect(unstructured.SetNestedField(obj.Object, tenantB, "spec", "tenantID")).To(Succeed())
		expectInvalid(k8sClient.Update(ctx, obj), "spec.tenantID", msgImmutable)

		stored := &v1.TenantPurchasePolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
		Expect(stored.Spec.TenantID).To(Equal(tenantA))
		Expect(stored.Spec.Mode).To(Equal(v1.ModeObserve))
	}, NodeTimeout(specTimeout))

	DescribeTable("offers no field that sets an endpoint",
		func(specCtx SpecContext, path ...string) {
			ctx, cancel := withTimeout(specCtx)
			defer cancel()
			field := strings.Join(path, ".")
			endpoint := "https://licensing.attacker.example"

			strict := newPolicy(ns, "strict", tenantA)
			set(endpoint, path...)(strict.Object)
			err := k8sClient.Create(ctx, strict, client.FieldValidation(metav1.FieldValidationStrict))
			Expect(err).To(MatchError(ContainSubstring(fmt.Sprintf("unknown field %q", field))))
			Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "want BadRequest, got: %v", err)

			// Without strict validation the server drops the field: nothing stored can point anywhere.
			lenient := newPolicy(ns, "lenient", tenantA)
			set(endpoint, path...)(lenient.Object)
			Expect(k8sClient.Create(ctx, lenient)).To(Succeed())
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(lenient.GroupVersionKind())
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(lenient), stored)).To(Succeed())
			_, found, err := unstructured.NestedFieldNoCopy(stored.Object, path...)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeFalse(), "%s was stored", field)
		},
		Entry("spec.licensingEndpoint", "spec", "licensingEndpoint"),
		Entry("spec.graphEndpoint", "spec", "graphEndpoint"),
		Entry("spec.authorityHost", "spec", "authorityHost"),
		Entry("spec.auth.authorityHost", "spec", "auth", "authorityHost"),
	)

	It("defaults every tenant setting left out to Unmanaged", func(ctx SpecContext) {
		obj := minimalPolicy(ns, "settings-defaults")
		set(map[string]any{"officeStore": "Disabled"}, "spec", "tenantSettings")(obj.Object)
		Expect(k8sClient.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
		got := &v1.TenantPurchasePolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		Expect(got.Spec.TenantSettings).To(HaveValue(Equal(v1.TenantSettings{EmailBasedSubscriptions: v1.SettingUnmanaged,
			EmailVerifiedUsersJoin: v1.SettingUnmanaged, TrialsOnBehalfOfOrganization: v1.SettingUnmanaged, OfficeStore: v1.SettingDisabled})))
	}, NodeTimeout(specTimeout))

	It("fills in the defaults and marks the status as not yet observed", func(ctx SpecContext) {
		obj := minimalPolicy(ns, "minimal")
		Expect(k8sClient.Create(ctx, obj)).To(Succeed())

		gen, found, err := unstructured.NestedInt64(obj.Object, "status", "observedGeneration")
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue(), "the create response has no status.observedGeneration")
		Expect(gen).To(Equal(int64(-1)), "the create response's status.observedGeneration")

		got := &v1.TenantPurchasePolicy{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), got)).To(Succeed())
		Expect(got.Spec.Mode).To(Equal(v1.ModeEnforce))
		Expect(got.Spec.Interval).To(Equal(metav1.Duration{Duration: 15 * time.Minute}))
		Expect(got.Spec.DeletionPolicy).To(Equal(v1.DeletionOrphan))
		Expect(got.Spec.Suspend).To(BeFalse())
		Expect(got.Spec.Subscriptions.Track).To(HaveValue(BeTrue()))
		Expect(got.Spec.Subscriptions.RefundWarning).To(HaveValue(Equal(metav1.Duration{Duration: 2 * time.Hour})))
		Expect(got.Spec.Subscriptions.FullRefundWindow).To(HaveValue(Equal(metav1.Duration{Duration: 24 * time.Hour})))
		Expect(got.Spec.Subscriptions.ProratedRefundWindow).To(HaveValue(Equal(metav1.Duration{Duration: 7 * 24 * time.Hour})))
		Expect(got.Status.ObservedGeneration).To(Equal(int64(-1)))

		// The print columns read status.summary: its counts must be there as 0
		// (not blank) even where the controller's merge patch never sends an
		// unchanged zero.
		for _, count := range []string{"managed", "compliant", "drifted", "unmanaged", "selfServiceSubscriptions"} {
			v, found, err := unstructured.NestedInt64(obj.Object, "status", "summary", count)
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue(), "status.summary.%s is not defaulted", count)
			Expect(v).To(BeZero())
		}
	}, NodeTimeout(specTimeout))

	It("lists by the field selector spec.tenantID", func(ctx SpecContext) {
		for name, tenant := range map[string]string{"contoso-a": tenantA, "contoso-b": tenantA, "fabrikam": tenantB} {
			Expect(k8sClient.Create(ctx, newPolicy(ns, name, tenant))).To(Succeed())
		}
		names := func(tenant string) []string {
			list := &v1.TenantPurchasePolicyList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingFields{"spec.tenantID": tenant})).To(Succeed())
			out := []string{}
			for _, p := range list.Items {
				Expect(p.Spec.TenantID).To(Equal(tenant))
				out = append(out, p.Name)
			}
			return out
		}
		Expect(names(tenantA)).To(ConsistOf("contoso-a", "contoso-b"))
		Expect(names(tenantB)).To(ConsistOf("fabrikam"))
		Expect(names("00000000-0000-0000-0000-000000000000")).To(BeEmpty())
	}, NodeTimeout(specTimeout))

	It("prints the columns kubectl get shows", func(ctx SpecContext) {
		Expect(k8sClient.Create(ctx, newPolicy(ns, "contoso", tenantA))).To(Succeed())

		table := getTable(ctx, ns)
		columns := []string{}
		for _, c := range table.ColumnDefinitions {
			columns = append(columns, c.Name)
		}
		Expect(columns).To(Equal([]string{"Name", "Tenant", "Mode", "Ready", "Drifted", "Managed", "Self-Service", "Last Sync", "Age"}))
		Expect(table.Rows).To(HaveLen(1))
		Expect(table.Rows[0].Cells).To(HaveLen(len(columns)))
		Expect(table.Rows[0].Cells[:3]).To(Equal([]any{"contoso", tenantA, "Enforce"}))
	}, NodeTimeout(specTimeout))
})

var _ = Describe("Samples under config/samples", func() {
	It("has samples to check", func() {
		Expect(sampleEntries()).NotTo(BeEmpty(), "no sample matches %s", samplesGlob)
	})

	DescribeTable("are accepted with strict field validation",
		func(specCtx SpecContext, path string) {
			ctx, cancel := withTimeout(specCtx)
			defer cancel()
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			obj := &unstructured.Unstructured{}
			Expect(yaml.Unmarshal(data, &obj.Object)).To(Succeed())
			Expect(obj.GroupVersionKind()).To(BeElementOf(v1.GroupVersion.WithKind("TenantPurchasePolicy"), v1.GroupVersion.WithKind("TenantPurchasePolicySet")))
			if obj.GetNamespace() != "" {
				ensureNamespace(ctx, obj.GetNamespace())
			}
			Expect(k8sClient.Create(ctx, obj, client.FieldValidation(metav1.FieldValidationStrict))).To(Succeed())
		},
		sampleEntries(),
	)
})

// getTable fetches the policies of namespace as the server-side Table that
// kubectl get prints.
func getTable(ctx context.Context, namespace string) *metav1.Table {
	GinkgoHelper()
	return tableAt(ctx, fmt.Sprintf(resourcePath, namespace))
}

// tableAt fetches the collection at path as the server-side Table.
func tableAt(ctx context.Context, path string) *metav1.Table {
	GinkgoHelper()
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	Expect(err).NotTo(HaveOccurred())
	body, err := dc.RESTClient().Get().
		AbsPath(path).
		SetHeader("Accept", tableAccept).
		DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred(), "GET table: %s", body)
	table := &metav1.Table{}
	Expect(json.Unmarshal(body, table)).To(Succeed())
	Expect(table.Kind).To(Equal("Table"))
	return table
}
