package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	yaml3 "go.yaml.in/yaml/v3"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/cli/manifest"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// export prints a TenantPurchasePolicy that matches the tenant as it is: the
// controller, given it, would write nothing.

type exportOptions struct {
	name, secretName string
	fold             string
}

func (a *app) exportCommand() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print a TenantPurchasePolicy that matches the tenant as it is today (mode Observe)",
		Long: "export reads the tenant's self-service purchase settings and prints a TenantPurchasePolicy that\n" +
			"matches them exactly: every product with its current value (names as comments), every offer type,\n" +
			"the tenant-wide acquisition settings (spec.tenantSettings), mode Observe. With --default Disabled, products at Disabled fold into default and only the\n" +
			"exceptions are listed. -n sets metadata.namespace.",
		Example: "  kubectl tpp export --tenant $TENANT --client-id $APP --client-secret-file secret.txt --default Disabled > contoso.yaml\n" +
			"  kubectl tpp export --from-policy m365/contoso",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.export(cmd.Context(), o) },
	}
	a.creds.bind(cmd.Flags())
	a.ms.bind(cmd.Flags())
	cmd.Flags().StringVar(&o.name, "name", "", "metadata.name (default: the --from-policy name, or tenant-<first 8 characters of the tenant ID>).")
	cmd.Flags().StringVar(&o.secretName, "secret-name", "", "Secret the exported spec.auth names (default: <name>-credentials).")
	cmd.Flags().StringVar(&o.fold, "default", string(v1.RuleUnmanaged), "spec.default: Disabled, Enabled or OnlyTrialsWithoutPaymentMethod folds the products at that value into default; Unmanaged lists every product.")
	return cmd
}

// tenantState is what export reads from the tenant. Each section of the
// exported spec is made from it (exportSections).
type tenantState struct {
	products, offerTypes []licensing.Item
	settings             settingsRead
}

// exportSection adds one part of spec from what the tenant holds; it may note
// on stderr what it left out.
type exportSection func(st *tenantState, o exportOptions, spec *yamlMap, warn func(string, ...any)) error

// exportSections are the parts of spec that mirror the tenant. A new
// tenant-managed field adds its reader to export and its section here.
var exportSections = []exportSection{exportDefault, exportProducts, exportOfferTypes, exportTenantSettings}

func (a *app) export(ctx context.Context, o exportOptions) error {
	if !validFold(o.fold) {
		return usageError("--default %q: want Enabled, Disabled, OnlyTrialsWithoutPaymentMethod or Unmanaged", o.fold)
	}
	ms, err := a.ms.connect()
	if err != nil {
		return err
	}
	cred, err := a.loadCredential(ctx, "")
	if err != nil {
		return err
	}
	tc, err := ms.creds.Credential(cred.material)
	if err != nil {
		return err
	}
	tenant := ms.licensing.For(cred.material.TenantID, tc)
	st := &tenantState{}
	if st.products, _, err = tenant.ListProducts(ctx); err != nil {
		return err
	}
	if st.offerTypes, _, err = tenant.ListOfferTypes(ctx); err != nil {
		return err
	}
	everything := func(*plan.SettingsResource) bool { return true }
	if st.settings, err = readSettings(ctx, ms.graph.For(cred.material.TenantID, tc), everything); err != nil {
		return err
	}
	doc, err := a.exportDocument(cred, st, o)
	if err != nil {
		return err
	}
	if err := selfCheck(ctx, doc); err != nil {
		return fmt.Errorf("the exported manifest does not pass the CRD's validation (a bug; please report it): %w", err)
	}
	_, err = a.streams.Out.Write(doc)
	return err
}

func validFold(v string) bool {
	switch v1.RulePolicy(v) {
	case v1.RulePolicy(v1.PolicyEnabled), v1.RulePolicy(v1.PolicyDisabled), v1.RulePolicy(v1.PolicyOnlyTrials), v1.RuleUnmanaged:
		return true
	}
	return false
}

// exportDocument renders the manifest.
func (a *app) exportDocument(cred *credential, st *tenantState, o exportOptions) ([]byte, error) {
	tenantID := cred.material.TenantID
	name, ns := o.name, a.kube.overrides.Context.Namespace
	if cred.policy != nil {
		name = firstNonEmpty(name, cred.policy.Name)
		ns = firstNonEmpty(ns, cred.policy.Namespace)
	}
	if name == "" {
		name = "tenant-" + strings.ToLower(tenantID[:min(8, len(tenantID))])
	}
	meta := &yamlMap{}
	meta.add("name", name, "")
	if ns != "" {
		meta.add("namespace", ns, "")
	}
	spec := &yamlMap{}
	spec.add("tenantID", tenantID, "")
	spec.addNode("auth", exportAuth(cred, firstNonEmpty(o.secretName, name+"-credentials"), ns), "")
	spec.add("mode", string(v1.ModeObserve), "Observe reports how the tenant differs and writes nothing. Switch to Enforce\nonce `kubectl tpp plan -f` on this file shows only changes you want.")
	warn := func(format string, args ...any) { fmt.Fprintf(a.streams.Err, "warning: "+format+"\n", args...) }
	for _, section := range exportSections {
		if err := section(st, o, spec, warn); err != nil {
			return nil, err
		}
	}
	root := &yamlMap{}
	root.add("apiVersion", v1.GroupVersion.String(), "")
	root.add("kind", "TenantPurchasePolicy", "")
	root.addNode("metadata", meta.node(), "")
	root.addNode("spec", spec.node(), "")
	n := root.node()
	n.HeadComment = fmt.Sprintf("Exported by kubectl tpp from tenant %s at %s.\nIt matches the tenant as it was then: `kubectl tpp plan -f` on this file shows no changes.",
		tenantID, time.Now().UTC().Format(time.RFC3339))
	var buf bytes.Buffer
	enc := yaml3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml3.Node{Kind: yaml3.DocumentNode, Content: []*yaml3.Node{n}}); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// exportAuth is the policy's own auth (--from-policy), or the reference to a
// Secret holding the credential the flags used, with how to create it.
func exportAuth(cred *credential, secret, ns string) *yaml3.Node {
	if p := cred.policy; p != nil {
		return blockNode(p.Spec.Auth)
	}
	m := &yamlMap{}
	m.add("clientID", cred.material.ClientID, "")
	nsFlag := ""
	if ns != "" {
		nsFlag = " -n " + ns
	}
	ref := &yamlMap{}
	ref.add("name", secret, "")
	switch {
	case cred.material.CertificatePEM != nil:
		m.addNode("clientCertificateRef", ref.node(), fmt.Sprintf("kubectl create secret tls %s%s --cert=tls.crt --key=tls.key", secret, nsFlag))
	case cred.material.RefreshTokens != nil:
		ref.add("key", "refreshToken", "")
		m.addNode("refreshTokenRef", ref.node(), fmt.Sprintf("kubectl tpp login --tenant %s --secret %s/%s", cred.material.TenantID, firstNonEmpty(ns, "NAMESPACE"), secret))
	default:
		ref.add("key", "clientSecret", "")
		m.addNode("clientSecretRef", ref.node(), fmt.Sprintf("kubectl create secret generic %s%s --from-file=clientSecret=./client-secret.txt", secret, nsFlag))
	}
	return m.node()
}

// exportDefault sets spec.default to --default.
func exportDefault(_ *tenantState, o exportOptions, spec *yamlMap, _ func(string, ...any)) error {
	comment := "Every product not listed below, including products Microsoft adds later\n(they start Enabled), is kept at this value."
	if v1.RulePolicy(o.fold) == v1.RuleUnmanaged {
		comment = "Products not listed below, including products Microsoft adds later (they start\nEnabled), are left alone. Disabled blocks them: export --default Disabled."
	}
	spec.add("default", o.fold, comment)
	return nil
}

// productIDPattern is the CRD's rule for a product ID.
var productIDPattern = regexp.MustCompile(`^[A-Z0-9]{12}$`)

// maxProductRules is the CRD's bound on spec.products.
const maxProductRules = 256

// exportProducts lists every product whose value default does not give.
func exportProducts(st *tenantState, o exportOptions, spec *yamlMap, warn func(string, ...any)) error {
	list := &yaml3.Node{Kind: yaml3.SequenceNode}
	for _, it := range st.products {
		switch {
		case !productIDPattern.MatchString(it.ProductID):
			warn("product %q (%s) left out: its ID is not 12 upper-case letters or digits, which the CRD requires", it.ProductID, it.ProductName)
			continue
		case !isPolicyValue(it.PolicyValue):
			warn("product %s (%s) left out: Microsoft reports the unknown value %q", it.ProductID, it.ProductName, it.PolicyValue)
			continue
		case it.PolicyValue == o.fold:
			continue
		}
		rule := &yamlMap{}
		rule.add("productID", it.ProductID, "")
		rule.add("policy", it.PolicyValue, "")
		n := rule.node()
		n.Content[1].LineComment = commentText(it.ProductName)
		list.Content = append(list.Content, n)
	}
	if len(list.Content) > maxProductRules {
		return usageError("the tenant has %d products to list, more than the CRD's %d: export with --default set to the most common value", len(list.Content), maxProductRules)
	}
	if len(list.Content) > 0 {
		spec.addNode("products", list, "")
	}
	return nil
}

// exportOfferTypes lists every third-party offer type with its value.
func exportOfferTypes(st *tenantState, _ exportOptions, spec *yamlMap, warn func(string, ...any)) error {
	list := &yaml3.Node{Kind: yaml3.SequenceNode}
	for _, it := range st.offerTypes {
		key := licensing.OfferTypeKey(it)
		if !knownOfferType(key) || !isPolicyValue(it.PolicyValue) {
			warn("offer type %q (%s) left out: the CRD knows SaaS, POWERBIVISUALS, DYNAMICSCE and DYNAMICSBC with Enabled, Disabled or OnlyTrialsWithoutPaymentMethod", key, it.PolicyValue)
			continue
		}
		rule := &yamlMap{}
		rule.add("offerType", key, "")
		rule.add("policy", it.PolicyValue, "")
		list.Content = append(list.Content, rule.node())
	}
	if len(list.Content) > 0 {
		spec.addNode("offerTypes", list, "Third-party offers; default does not cover them.")
	}
	return nil
}

func isPolicyValue(v string) bool {
	switch v1.PolicyValue(v) {
	case v1.PolicyEnabled, v1.PolicyDisabled, v1.PolicyOnlyTrials:
		return true
	}
	return false
}

func knownOfferType(v string) bool {
	switch v {
	case "SaaS", "POWERBIVISUALS", "DYNAMICSCE", "DYNAMICSBC":
		return true
	}
	return false
}

// commentText makes a product name safe for a one-line comment.
func commentText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// selfCheck validates the exported document as plan and the API server do.
func selfCheck(ctx context.Context, doc []byte) error {
	v, err := manifest.NewValidator()
	if err != nil {
		return err
	}
	docs, err := manifest.Parse("export", doc)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if _, err := v.Validate(ctx, d, "default"); err != nil {
			return err
		}
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// blockNode is v (marshalled as JSON, as Kubernetes does) as block-style YAML.
func blockNode(v any) *yaml3.Node {
	js, _ := json.Marshal(v)
	var doc yaml3.Node
	_ = yaml3.Unmarshal(js, &doc)
	var unflow func(*yaml3.Node)
	unflow = func(n *yaml3.Node) {
		n.Style = 0
		for _, c := range n.Content {
			unflow(c)
		}
	}
	unflow(&doc)
	if len(doc.Content) == 0 {
		return &yaml3.Node{Kind: yaml3.MappingNode}
	}
	return doc.Content[0]
}

// yamlMap builds a YAML mapping in order, with comments.
type yamlMap struct{ content []*yaml3.Node }

func (m *yamlMap) add(key, value, comment string) {
	m.addNode(key, &yaml3.Node{Kind: yaml3.ScalarNode, Value: value}, comment)
}

func (m *yamlMap) addNode(key string, value *yaml3.Node, comment string) {
	m.content = append(m.content, &yaml3.Node{Kind: yaml3.ScalarNode, Value: key, HeadComment: comment}, value)
}

func (m *yamlMap) node() *yaml3.Node { return &yaml3.Node{Kind: yaml3.MappingNode, Content: m.content} }
