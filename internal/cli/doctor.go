package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// doctor runs, with one tenant and credential, each step people get wrong,
// in the order the controller needs them, and says which fails and how to
// fix it. Nothing changes in the tenant: the write check puts a product's
// current value back. No secret or token is printed.

type doctorOptions struct {
	skipWrite bool
}

func (a *app) doctorCommand() *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a tenant and credential step by step and say how to fix the step that fails",
		Long: "doctor checks, in order: a token for the licensing API (explaining Entra's AADSTS code), the\n" +
			"licensing service principal in the tenant, reading the product list, write permission (a product's\n" +
			"current value is PUT back, so nothing changes), a Microsoft Graph token and reading subscriptions.\n" +
			"Each failing step names the permission or role it needs. The exit code is 1 when a required step\n" +
			"fails; the Graph steps (subscription tracking) only warn.",
		Example: "  kubectl tpp doctor --tenant $TENANT --client-id $APP --client-secret-file secret.txt\n" +
			"  kubectl tpp doctor --from-policy m365/contoso",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.doctor(cmd.Context(), o) },
	}
	a.creds.bind(cmd.Flags())
	a.ms.bind(cmd.Flags())
	cmd.Flags().BoolVar(&o.skipWrite, "skip-write", false, "Do not check write permission (no PUT is sent); Enforce mode needs it.")
	return cmd
}

// Outcomes of a step.
const (
	pass = "PASS"
	fail = "FAIL"
	warn = "WARN"
	skip = "SKIP"
)

// checkup carries what the steps learn.
type checkup struct {
	ms        *microsoft
	cred      *credential
	tc        azcore.TokenCredential
	tenant    licensing.Tenant
	products  []licensing.Item
	tokenErr  error // of the licensing token
	opts      doctorOptions
	needWrite bool
	needGraph bool
}

// result is one step's outcome.
type result struct {
	outcome, detail, fix string
}

// doctorStep is one check. required: its failure fails doctor.
type doctorStep struct {
	name     string
	required func(*checkup) bool
	run      func(*checkup, context.Context) result
}

func always(*checkup) bool { return true }

var doctorSteps = []doctorStep{
	{"token for the licensing API", always, (*checkup).licensingToken},
	{"licensing service principal", always, (*checkup).servicePrincipal},
	{"read the product list", always, (*checkup).readProducts},
	{"write permission", func(c *checkup) bool { return c.needWrite }, (*checkup).writeProduct},
	{"token for Microsoft Graph", func(*checkup) bool { return false }, (*checkup).graphToken},
	{"read subscriptions", func(*checkup) bool { return false }, (*checkup).readSubscriptions},
}

func (a *app) doctor(ctx context.Context, o doctorOptions) error {
	ms, err := a.ms.connect()
	if err != nil {
		return err
	}
	cred, err := a.loadCredential(ctx, "")
	if err != nil {
		return err
	}
	c := &checkup{ms: ms, cred: cred, opts: o, needWrite: !o.skipWrite, needGraph: true}
	if p := cred.policy; p != nil {
		c.needWrite = !o.skipWrite && p.Spec.Mode != v1.ModeObserve
		c.needGraph = p.Spec.Subscriptions.Track == nil || *p.Spec.Subscriptions.Track
	}
	m := cred.material
	fmt.Fprintf(a.streams.Out, "Checking tenant %s with client %s (%s) at %s\n", m.TenantID, m.ClientID, cred.method, a.ms.endpoints.AuthorityHost)
	if c.tc, err = ms.creds.Credential(m); err != nil {
		return err
	}
	c.tenant = ms.licensing.For(m.TenantID, c.tc)
	var failed []string
	w := &stepWriter{w: a.streams.Out}
	for _, s := range doctorSteps {
		r := s.run(c, ctx)
		if r.outcome == fail && !s.required(c) {
			r.outcome = warn
		}
		if r.outcome == fail {
			failed = append(failed, s.name)
		}
		w.write(s.name, r)
	}
	if len(failed) > 0 {
		fmt.Fprintf(a.streams.Out, "%d required %s failed: %s.\n", len(failed), plural(len(failed), "step", "steps"), strings.Join(failed, ", "))
		return exitCode(ExitError)
	}
	fmt.Fprintln(a.streams.Out, "Every required step passed.")
	return nil
}

// licensingToken asks Entra for a token of the licensing API.
func (c *checkup) licensingToken(ctx context.Context) result {
	_, err := c.tc.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{m365.LicensingScope}})
	c.tokenErr = err
	switch {
	case err == nil:
		return result{outcome: pass, detail: "Entra issued a token for " + m365.LicensingScope}
	case isAADSTS(err, "500011"):
		return result{outcome: skip, detail: "Entra has no such resource in this tenant (next step)"}
	}
	return c.failure(err, "")
}

// servicePrincipal reads the token step: Entra answers AADSTS500011 when
// the tenant lacks the licensing API's service principal.
func (c *checkup) servicePrincipal(context.Context) result {
	switch {
	case c.tokenErr == nil:
		return result{outcome: pass, detail: "M365 License Manager (" + licensingAppID + ") is in the tenant"}
	case isAADSTS(c.tokenErr, "500011"):
		return c.failure(c.tokenErr, "")
	}
	return result{outcome: skip, detail: "needs a token"}
}

func (c *checkup) readProducts(ctx context.Context) result {
	if c.tokenErr != nil {
		return result{outcome: skip, detail: "needs a token"}
	}
	items, _, err := c.tenant.ListProducts(ctx)
	if err != nil {
		return c.failure(err, "list products")
	}
	c.products = items
	return result{outcome: pass, detail: fmt.Sprintf("%d products", len(items))}
}

// writeProduct proves write permission without changing anything: the
// first product (by ID) gets its current value again.
func (c *checkup) writeProduct(ctx context.Context) result {
	switch {
	case c.opts.skipWrite:
		return result{outcome: skip, detail: "--skip-write; Enforce mode needs write permission"}
	case len(c.products) == 0:
		return result{outcome: skip, detail: "needs the product list"}
	}
	items := append([]licensing.Item(nil), c.products...)
	sort.Slice(items, func(i, j int) bool { return items[i].ProductID < items[j].ProductID })
	it := items[0]
	got, err := c.tenant.SetProduct(ctx, it.ProductID, it.PolicyValue)
	if err != nil {
		return c.failure(err, "set product")
	}
	answer := "accepted"
	if got != nil {
		answer = "answered " + got.PolicyValue
	}
	return result{outcome: pass, detail: fmt.Sprintf("PUT %s (%s) = %s, its current value: %s", it.ProductID, it.ProductName, it.PolicyValue, answer)}
}

func (c *checkup) graphToken(ctx context.Context) result {
	if !c.needGraph {
		return result{outcome: skip, detail: "the policy does not track subscriptions"}
	}
	if _, err := c.tc.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{m365.GraphScope}}); err != nil {
		return c.failure(err, "")
	}
	return result{outcome: pass, detail: "Entra issued a token for " + m365.GraphScope}
}

func (c *checkup) readSubscriptions(ctx context.Context) result {
	if !c.needGraph {
		return result{outcome: skip, detail: "the policy does not track subscriptions"}
	}
	subs, _, err := c.ms.graph.For(c.cred.material.TenantID, c.tc).ListSubscriptions(ctx)
	if err != nil {
		return c.failure(err, "list subscriptions")
	}
	return result{outcome: pass, detail: fmt.Sprintf("%d subscriptions (subscription tracking works)", len(subs))}
}

// failure describes err and how to fix it; op names the call for the
// permission a 403 needs.
func (c *checkup) failure(err error, op string) result {
	e, ok := m365.AsError(err)
	if !ok {
		return result{outcome: fail, detail: explain(err)}
	}
	r := result{outcome: fail, detail: e.Error()}
	if meaning, fix, ok := aadsts(e); ok {
		r.detail, r.fix = meaning+": "+e.Error(), fix
		return r
	}
	switch e.Kind {
	case m365.Forbidden:
		r.fix = permissionHint(op, c.cred.delegated)
	case m365.Unauthorized:
		r.fix = pick(c.cred.delegated, "sign in again: kubectl tpp login", "check --client-id and the credential flags")
	default:
		r.fix = "Microsoft or the network failed for now: run doctor again; check the endpoint flags if it lasts"
	}
	return r
}

func isAADSTS(err error, code string) bool {
	e, ok := m365.AsError(err)
	return ok && strings.HasPrefix(e.Reason, "AADSTS"+code+":")
}

// stepWriter prints steps in aligned columns.
type stepWriter struct{ w io.Writer }

func (s *stepWriter) write(name string, r result) {
	fmt.Fprintf(s.w, "  %-4s  %-28s  %s\n", r.outcome, name, r.detail)
	if r.fix != "" {
		fmt.Fprintf(s.w, "        %-28s  fix: %s\n", "", r.fix)
	}
}
