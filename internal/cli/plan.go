package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/cli/manifest"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// plan validates manifests offline, reads each policy's tenant and prints
// what the controller would change there (internal/plan, the controller's own
// desired-state code), writing nothing.

type planOptions struct {
	files  []string
	output string
}

func (a *app) planCommand() *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan -f FILE|DIR|-",
		Short: "Show what the controller would change in each tenant for these manifests; writes nothing",
		Long: "plan validates the manifests against the CRD offline (the API server's own checks and messages),\n" +
			"reads each policy's tenant and prints every product, offer type and managed tenant setting the\n" +
			"controller would change: from, to, and why (rule, default, expired rule, tenantSettings). It writes nothing.\n\n" +
			"Exit codes: 0 nothing would change, 2 something would (in Observe mode: what the controller\n" +
			"would report as drift), 1 an error (an invalid manifest, credentials, permissions).\n" +
			"Documents of other API groups (Namespaces, Secrets, Kustomizations) are skipped.",
		Example: "  kubectl tpp plan -f policies/ --client-id $APP --client-secret-env TPP_CLIENT_SECRET\n" +
			"  kustomize build overlays/prod | kubectl tpp plan -f - --from-policy m365/contoso -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.plan(cmd.Context(), o) },
	}
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "Manifest file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeatable.")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "Output: text or json.")
	a.creds.bind(cmd.Flags())
	a.ms.bind(cmd.Flags())
	return cmd
}

// planReport is plan's answer (-o json).
type planReport struct {
	Policies []policyPlan `json:"policies"`
	// Changes counts the changes over every policy.
	Changes int `json:"changes"`
	// Warnings are what plan could not see (a set's discovered customers).
	Warnings []string `json:"warnings,omitempty"`
}

// policyPlan is what the controller would do for one policy, or for one
// listed tenant of a policy set (Kind TenantPurchasePolicySet, Name the
// set's, Tenant the listed name).
type policyPlan struct {
	Source    string   `json:"source"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Tenant    string   `json:"tenant,omitempty"`
	TenantID  string   `json:"tenantID"`
	Mode      v1.Mode  `json:"mode"`
	Suspended bool     `json:"suspended,omitempty"`
	Changes   []change `json:"changes"`
	// Unknown are rules naming products or offer types the tenant lacks.
	Unknown []string `json:"unknown,omitempty"`
	// Warnings are tenant settings plan could not read (a missing
	// permission, a cloud without the beta resource).
	Warnings []string `json:"warnings,omitempty"`
}

// change is one product, offer type or tenant setting the controller would set.
type change struct {
	// Kind is "product", "offerType" or "tenantSetting".
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	From string `json:"from"`
	To   string `json:"to"`
	// Why is rule, default, expired rule or tenantSettings.
	Why string `json:"why"`
}

// planned is one tenant's spec read from a manifest, ready to plan: a
// policy's, or a set's template with one listed tenant's overrides.
type planned struct {
	// source is the file and line of the policy, or of the set's tenant.
	source         string
	kind, ns, name string
	tenant         string
	spec           v1.TenantPurchasePolicySpec
}

// expansion is what one validated document stands for: the specs to plan
// and what plan cannot see.
type expansion struct {
	planned  []planned
	warnings []string
}

// kindPlanners turn a validated document of a kind into the specs to plan.
var kindPlanners = map[string]func(d manifest.Document, obj *unstructured.Unstructured) (expansion, error){
	"TenantPurchasePolicy": func(d manifest.Document, obj *unstructured.Unstructured) (expansion, error) {
		var p v1.TenantPurchasePolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &p); err != nil {
			return expansion{}, manifest.Problem{Source: d.Source, Line: d.Line, Message: err.Error()}
		}
		return expansion{planned: []planned{{source: d.Where(), kind: p.Kind, ns: p.Namespace, name: p.Name, spec: p.Spec}}}, nil
	},
	"TenantPurchasePolicySet": planSet,
}

// planSet plans each listed tenant of a set with the spec its child policy
// gets (plan.TenantSpec, the set controller's own merge of the template and
// the tenant's overrides). Discovered customers are known only to the
// cluster, so they are named as not planned.
func planSet(d manifest.Document, obj *unstructured.Unstructured) (expansion, error) {
	var set v1.TenantPurchasePolicySet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &set); err != nil {
		return expansion{}, manifest.Problem{Source: d.Source, Line: d.Line, Message: err.Error()}
	}
	var x expansion
	for i, t := range set.Spec.Tenants {
		at := fmt.Sprintf("%s:%d", d.Source, d.LineOf(fmt.Sprintf("spec.tenants[%d]", i)))
		x.planned = append(x.planned, planned{source: at, kind: set.Kind, ns: set.Namespace, name: set.Name, tenant: t.Name,
			spec: plan.TenantSpec(&set.Spec.Template.TenantPurchasePolicyTemplate, t.TenantID, t.Overrides)})
	}
	where := fmt.Sprintf("%s %s/%s (%s)", set.Kind, set.Namespace, set.Name, d.Where())
	if disc := set.Spec.Discovery; disc != nil && disc.DelegatedAdminCustomers != nil {
		x.warnings = append(x.warnings, fmt.Sprintf("%s: the customers discovery finds (delegated admin customers of %s) are not planned, only the %d listed %s",
			where, disc.DelegatedAdminCustomers.PartnerTenantID, len(set.Spec.Tenants), plural(len(set.Spec.Tenants), "tenant", "tenants")))
	}
	if set.Spec.Suspend {
		x.warnings = append(x.warnings, where+": the set is suspended, so its children keep their specs; the plan shows what they get once it resumes")
	}
	return x, nil
}

func (a *app) plan(ctx context.Context, o planOptions) error {
	if len(o.files) == 0 {
		return usageError("plan needs -f FILE, -f DIR or -f -")
	}
	if o.output != "text" && o.output != "json" {
		return usageError("-o %q: want text or json", o.output)
	}
	x, err := a.readPolicies(ctx, o.files)
	if err != nil {
		return err
	}
	ms, err := a.ms.connect()
	if err != nil {
		return err
	}
	var (
		report planReport
		failed []error
	)
	report.Warnings = x.warnings
	for _, p := range x.planned {
		pp, err := a.planPolicy(ctx, ms, p)
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %s", pp.title(), explain(err)))
			continue
		}
		report.Policies = append(report.Policies, pp)
		report.Changes += len(pp.Changes)
	}
	if err := writePlan(a.streams.Out, o.output, report); err != nil {
		return err
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	if report.Changes > 0 {
		return exitCode(ExitChanges)
	}
	return nil
}

// readPolicies reads and validates every document; any invalid one fails
// the whole plan with every problem found.
func (a *app) readPolicies(ctx context.Context, files []string) (expansion, error) {
	docs, err := manifest.Read(files, a.streams.In)
	if err != nil {
		return expansion{}, err
	}
	v, err := manifest.NewValidator()
	if err != nil {
		return expansion{}, err
	}
	var (
		out      expansion
		problems manifest.Problems
	)
	ns := a.kube.namespace()
	for _, d := range docs {
		gvk := d.Object.GroupVersionKind()
		if !v.Owns(gvk) {
			continue
		}
		obj, err := v.Validate(ctx, d, ns)
		if ps, ok := manifest.AsProblems(err); ok {
			problems = append(problems, ps...)
			continue
		}
		var inv *manifest.Invalid
		if errors.As(err, &inv) {
			problems = append(problems, inv.Fields...)
			continue
		}
		if err != nil {
			return expansion{}, err
		}
		expand, ok := kindPlanners[gvk.Kind]
		if !ok {
			problems = append(problems, manifest.Problem{Source: d.Source, Line: d.Line, Message: "plan does not handle " + gvk.Kind + " yet"})
			continue
		}
		x, err := expand(d, obj)
		if err != nil {
			return expansion{}, err
		}
		out.planned = append(out.planned, x.planned...)
		out.warnings = append(out.warnings, x.warnings...)
	}
	if len(problems) > 0 {
		return expansion{}, problems
	}
	if len(out.planned) == 0 && len(out.warnings) == 0 {
		return expansion{}, usageError("no TenantPurchasePolicy or TenantPurchasePolicySet with listed tenants in %s", strings.Join(files, ", "))
	}
	return out, nil
}

// planPolicy reads the tenant of one policy as the controller does (one
// product list, and the offer-type list when the policy has offer-type rules)
// and computes the controller's plan.
func (a *app) planPolicy(ctx context.Context, ms *microsoft, p planned) (policyPlan, error) {
	spec := &p.spec
	pp := policyPlan{Source: p.source, Kind: p.kind, Namespace: p.ns, Name: p.name, Tenant: p.tenant,
		TenantID: spec.TenantID, Mode: spec.Mode, Suspended: spec.Suspend, Changes: []change{}}
	cred, err := a.loadCredential(ctx, strings.ToLower(spec.TenantID))
	if err != nil {
		return pp, err
	}
	tc, err := ms.creds.Credential(cred.material)
	if err != nil {
		return pp, err
	}
	tenant := ms.licensing.For(strings.ToLower(spec.TenantID), tc)
	products, _, err := tenant.ListProducts(ctx)
	if err != nil {
		return pp, err
	}
	var offers = products[:0:0]
	if len(spec.OfferTypes) > 0 {
		if offers, _, err = tenant.ListOfferTypes(ctx); err != nil {
			return pp, err
		}
	}
	pl := plan.Compute(spec, products, offers, time.Now())
	pp.Changes = append(append(pp.Changes, changesOf("product", pl.Products)...), changesOf("offerType", pl.OfferTypes)...)
	pp.Unknown = pl.Unknown
	if plan.SettingsManagedOn(spec.TenantSettings, plan.AuthorizationPolicy) || plan.SettingsManagedOn(spec.TenantSettings, plan.AppsAndServices) {
		changes, warnings, err := settingsChanges(ctx, ms.graph.For(strings.ToLower(spec.TenantID), tc), spec.TenantSettings)
		if err != nil {
			return pp, err
		}
		pp.Changes = append(pp.Changes, changes...)
		pp.Warnings = warnings
	}
	return pp, nil
}

// changesOf lists the targets that differ: exactly what Enforce writes.
func changesOf(kind string, targets []plan.Target) []change {
	var out []change
	for _, t := range targets {
		if t.Differs() {
			out = append(out, change{Kind: kind, ID: t.ID, Name: t.Name, From: t.Observed, To: string(t.Desired), Why: why(t.Source)})
		}
	}
	return out
}

func why(s v1.DesiredSource) string {
	switch s {
	case v1.SourceRule:
		return "rule"
	case v1.SourceExpiredRule:
		return "expired rule (default applies)"
	}
	return "default"
}

// title names the policy, or the set and its listed tenant, and where it
// was read.
func (p policyPlan) title() string {
	name := p.Kind + " " + p.Namespace + "/" + p.Name
	if p.Kind == "TenantPurchasePolicySet" {
		name += ", tenant " + p.TenantID
		if p.Tenant != "" {
			name += " (" + p.Tenant + ")"
		}
		return name + " (" + p.Source + ")"
	}
	return name + " (" + p.Source + "), tenant " + p.TenantID
}

func writePlan(w io.Writer, output string, r planReport) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	changed := 0
	for _, p := range r.Policies {
		fmt.Fprintf(w, "%s, %s%s: %s\n", p.title(), p.Mode, suspendedNote(p.Suspended), countChanges(p))
		if len(p.Changes) > 0 {
			changed++
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  PRODUCT\tNAME\tFROM\tTO\tWHY")
			for _, c := range p.Changes {
				id := c.ID
				switch c.Kind {
				case "offerType":
					id = "offer type " + c.ID
				case "tenantSetting":
					id = "tenant setting " + c.ID
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", id, c.Name, c.From, c.To, c.Why)
			}
			_ = tw.Flush()
		}
		for _, u := range p.Unknown {
			fmt.Fprintf(w, "  warning: a rule names %s, which the tenant does not have (the controller reports UnknownProduct and enforces the rest)\n", u)
		}
		for _, warning := range p.Warnings {
			fmt.Fprintf(w, "  warning: %s (the controller reports TenantSettingsDegraded and enforces the rest)\n", warning)
		}
	}
	for _, warning := range r.Warnings {
		fmt.Fprintln(w, "warning: "+warning)
	}
	switch {
	case r.Changes == 0:
		fmt.Fprintln(w, "No changes: every tenant matches its manifest.")
	default:
		fmt.Fprintf(w, "Plan: %d %s in %d of %d %s. Enforce mode writes them; Observe mode reports them as drift.\n",
			r.Changes, plural(r.Changes, "change", "changes"), changed, len(r.Policies), plural(len(r.Policies), "tenant", "tenants"))
	}
	return nil
}

func countChanges(p policyPlan) string {
	if len(p.Changes) == 0 {
		return "no changes"
	}
	return fmt.Sprintf("%d %s", len(p.Changes), plural(len(p.Changes), "change", "changes"))
}

func suspendedNote(s bool) string {
	if s {
		return " (suspended: no calls while spec.suspend is true)"
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
