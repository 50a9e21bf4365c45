package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Products the walk-through acts on.
const (
	productCopilot    = "CFQ7TTC0MM8R"
	productPowerBIPro = "CFQ7TTC0H9MP"
	productVisioPlan2 = "CFQ7TTC0HD32"
	// newProductID and newProductName are the product "Microsoft adds"
	// during the demo (made up; it exists only in the simulator).
	newProductID   = "CFQ7TTC0D3M0"
	newProductName = "Contoso Demo Add-on (added by Microsoft today)"
)

// step is one part of the walk-through: it acts like a person would, asks for
// a sync, waits for the expected status and returns the status lines to show.
type step struct {
	title string
	run   func(ctx context.Context) ([]string, error)
}

// steps returns the walk-through in order.
func (d *demo) steps() []step {
	steps := []step{
		{"adoption and convergence", d.stepAdoption},
		{"someone re-enables a product by hand; the controller corrects it", d.stepDrift},
		{"Microsoft adds a new product; the default catches it", d.stepNewProduct},
		{"a user buys Copilot; the purchase appears with its refund windows", d.stepPurchase},
		{"an admin takes the purchase over; the takeover is recorded", d.stepTakeover},
		{"a side door: a trial on behalf of the organisation; the policy closes it", d.stepOrganizationTrial},
		{"the Observe tenant reports drift without writing", d.stepObserve},
	}
	if d.mon != nil {
		steps = append(steps, step{"Prometheus watches: Microsoft throttles, a user buys, the alert fires", d.stepMonitoring})
	}
	return append(steps, step{"a partner's baseline: one policy set over both tenants and a customer it discovers", d.stepPolicySet})
}

// walkThrough runs the steps, printing the table and status lines after
// each; it stops at the first failure and reports whether all passed.
func (d *demo) walkThrough(ctx context.Context) bool {
	steps := d.steps()
	for i, s := range steps {
		fmt.Fprintf(d.out, "\n=== Step %d/%d: %s\n", i+1, len(steps), s.title)
		start := time.Now()
		lines, err := s.run(ctx)
		d.printTable(ctx)
		for _, l := range lines {
			fmt.Fprintln(d.out, strings.TrimRight("  "+l, " "))
		}
		if err != nil {
			fmt.Fprintf(d.out, "[FAILED] %d/%d %s: %v\n", i+1, len(steps), s.title, err)
			for j := i + 1; j < len(steps); j++ {
				fmt.Fprintf(d.out, "[SKIPPED] %d/%d %s\n", j+1, len(steps), steps[j].title)
			}
			return false
		}
		fmt.Fprintf(d.out, "[OK] %d/%d %s (%s)\n", i+1, len(steps), s.title, time.Since(start).Round(100*time.Millisecond))
	}
	fmt.Fprintf(d.out, "\nAll %d steps OK.\n", len(steps))
	return true
}

// printTable prints `kubectl get tpp -A` from the API server's Table.
func (d *demo) printTable(ctx context.Context) {
	fmt.Fprintln(d.out, "\n$ kubectl get tpp -A")
	t, err := fetchPolicyTable(ctx, d.tables)
	if err == nil {
		err = renderTable(d.out, t, true)
	}
	if err != nil {
		fmt.Fprintln(d.out, "  (table unavailable:", err, ")")
	}
	fmt.Fprintln(d.out)
}

func (d *demo) act(format string, args ...any) {
	fmt.Fprintf(d.out, "  -> "+format+"\n", args...)
}

// stepAdoption waits for both policies' first sync: Contoso converges (every
// product Disabled but Copilot), Fabrikam reports its difference and nothing
// is written to it.
func (d *demo) stepAdoption(ctx context.Context) ([]string, error) {
	contoso, fabrikam := d.tenants[0], d.tenants[1]
	d.act("waiting for the controller to adopt both tenants")
	pc, err := d.waitFor(ctx, contoso, "", func(p *v1.TenantPurchasePolicy) error {
		return all(ready(p), drifted(p, metav1.ConditionFalse), summaryIs(p, len(m365sim.DefaultProducts()), 0),
			productIs(p, productCopilot, v1.PolicyEnabled, v1.SourceRule), productIs(p, productPowerBIPro, v1.PolicyDisabled, v1.SourceDefault))
	})
	if err != nil {
		return nil, err
	}
	lines := append([]string{policyHeadline(pc)}, adoptionLines(pc)...)
	if err := d.simAgrees(ctx, contoso, func(pid string) string {
		if pid == productCopilot {
			return m365sim.PolicyEnabled
		}
		return m365sim.PolicyDisabled
	}); err != nil {
		return lines, err
	}
	lines = append(lines, "simulator: Contoso now has every product Disabled except Copilot (Enabled)")
	pf, err := d.waitFor(ctx, fabrikam, "", func(p *v1.TenantPurchasePolicy) error {
		return all(ready(p), drifted(p, metav1.ConditionTrue), summaryIs(p, len(m365sim.DefaultProducts()), 1), noDriftRecords(p))
	})
	if err != nil {
		return lines, err
	}
	lines = append(lines, "", policyHeadline(pf), conditionLine(pf, v1.DriftedCondition),
		"adoption is not drift: driftHistory is empty")
	puts, err := d.licensingWrites(ctx, fabrikam)
	if err != nil || puts != 0 {
		return lines, errors.Join(err, fmt.Errorf("the controller wrote %d times to the Observe tenant", puts))
	}
	lines = append(lines, "simulator: 0 licensing PUT requests for Fabrikam (Observe writes nothing)")
	return append(lines, d.eventLines(ctx, pc, v1.EventAdopted)...), nil
}

// stepDrift re-enables Power BI Pro in Contoso by hand and waits for the
// controller to set it back and record the drift.
func (d *demo) stepDrift(ctx context.Context) ([]string, error) {
	contoso := d.tenants[0]
	d.act("an admin sets Power BI Pro (%s) to Enabled in the admin center (simulator admin API)", productPowerBIPro)
	if err := d.sim.SetPolicy(ctx, contoso.id, productPowerBIPro, m365sim.PolicyEnabled); err != nil {
		return nil, err
	}
	want := v1.DriftRecord{ProductID: productPowerBIPro, Expected: string(v1.PolicyDisabled), Found: string(v1.PolicyEnabled), Action: v1.DriftCorrected}
	p, err := d.syncAndWait(ctx, contoso, func(p *v1.TenantPurchasePolicy) error {
		return all(latestDrift(p, want), ready(p), drifted(p, metav1.ConditionFalse))
	})
	if err != nil {
		return nil, err
	}
	lines := []string{policyHeadline(p), "drift record: " + driftLine(p.Status.DriftHistory[0]),
		productLine(findProduct(p, productPowerBIPro)), countersLine(p)}
	if err := d.simValue(ctx, contoso, productPowerBIPro, m365sim.PolicyDisabled); err != nil {
		return lines, err
	}
	lines = append(lines, "simulator: Power BI Pro is Disabled again")
	return append(lines, d.eventLines(ctx, p, v1.EventDriftCorrected)...), nil
}

// stepNewProduct adds a product to Contoso, Enabled as Microsoft ships new
// products, and waits for default to disable it.
func (d *demo) stepNewProduct(ctx context.Context) ([]string, error) {
	contoso := d.tenants[0]
	added, err := d.sim.AddProduct(ctx, contoso.id, m365sim.Product{ID: newProductID, Name: newProductName})
	if err != nil {
		return nil, err
	}
	d.act("Microsoft adds %s (%s); it starts as %s", added.ID, added.Name, added.PolicyValue)
	managed := len(m365sim.DefaultProducts()) + 1
	p, err := d.syncAndWait(ctx, contoso, func(p *v1.TenantPurchasePolicy) error {
		return all(productIs(p, newProductID, v1.PolicyDisabled, v1.SourceDefault), summaryIs(p, managed, 0), newProducts(p, 1))
	})
	if err != nil {
		return nil, err
	}
	lines := []string{policyHeadline(p), productLine(findProduct(p, newProductID)), countersLine(p)}
	if err := d.simValue(ctx, contoso, newProductID, m365sim.PolicyDisabled); err != nil {
		return lines, err
	}
	lines = append(lines, "simulator: "+newProductID+" is Disabled")
	return append(lines, d.eventLines(ctx, p, v1.EventNewProductDetected)...), nil
}

// stepPurchase shows a blocked purchase, then a Copilot purchase (allowed by
// the rule) and waits for it to appear in status with its refund windows.
func (d *demo) stepPurchase(ctx context.Context) ([]string, error) {
	contoso := d.tenants[0]
	buyer := "megan@" + contoso.domain
	_, err := d.sim.Purchase(ctx, contoso.id, m365sim.PurchaseRequest{UserPrincipalName: buyer, SkuPartNumber: m365sim.SkuPowerBIPro})
	var se *m365sim.AdminError
	if !errors.As(err, &se) || se.Status != http.StatusForbidden {
		return nil, fmt.Errorf("buying Power BI Pro should be blocked by the policy (403), got %v", err)
	}
	d.act("%s tries to buy Power BI Pro: refused (%d: %s)", buyer, se.Status, se.Message)
	sub, err := d.sim.Purchase(ctx, contoso.id, m365sim.PurchaseRequest{UserPrincipalName: buyer, SkuPartNumber: m365sim.SkuCopilot})
	if err != nil {
		return nil, fmt.Errorf("buying Copilot: %w", err)
	}
	d.purchased = sub
	d.act("%s buys 1 Microsoft 365 Copilot seat with a credit card: subscription %s", buyer, sub.ID)
	p, err := d.syncAndWait(ctx, contoso, func(p *v1.TenantPurchasePolicy) error {
		return all(selfServiceIs(p, sub), selfServiceCount(p, 1))
	})
	if err != nil {
		return nil, err
	}
	e := findSelfService(p, sub.ID)
	lines := []string{policyHeadline(p), "self-service: " + selfServiceLine(e),
		fmt.Sprintf("refund windows: full refund until %s, prorated refund until %s", stamp(e.FullRefundUntil), stamp(e.ProratedRefundUntil)),
		fmt.Sprintf("takeover: the organisation has %d free %s seat(s); takeover possible: %t", e.FreeOrgSeats, e.SkuPartNumber, e.TakeoverPossible)}
	return append(lines, d.eventLines(ctx, p, v1.EventSelfServicePurchase)...), nil
}

// stepTakeover takes the purchase over and waits for the handover record.
func (d *demo) stepTakeover(ctx context.Context) ([]string, error) {
	contoso := d.tenants[0]
	if d.purchased.ID == "" {
		return nil, errors.New("no purchase to take over")
	}
	if _, err := d.sim.TakeOver(ctx, contoso.id, d.purchased.ID); err != nil {
		return nil, fmt.Errorf("taking over %s: %w", d.purchased.ID, err)
	}
	// The cancellation that follows runs through Warning and Suspended to
	// Deleted; in Microsoft 365 that takes weeks, the demo skips ahead.
	if _, err := d.sim.Advance(ctx, contoso.id, d.purchased.ID, m365sim.StatusDeleted); err != nil {
		return nil, fmt.Errorf("advancing %s: %w", d.purchased.ID, err)
	}
	d.act("an admin takes control of subscription %s: the buyer moves to the organisation's Copilot subscription", d.purchased.ID)
	p, err := d.syncAndWait(ctx, contoso, func(p *v1.TenantPurchasePolicy) error {
		return all(handoverIs(p, d.purchased.ID, v1.VerdictTakenOver), takeovers(p, 1), selfServiceCount(p, 0))
	})
	if err != nil {
		return nil, err
	}
	h := findHandover(p, d.purchased.ID)
	lines := []string{policyHeadline(p), "handover: " + handoverLine(h), "evidence: " + h.Evidence, countersLine(p)}
	return append(lines, d.eventLines(ctx, p, v1.EventTakeoverDetected)...), nil
}

// stepOrganizationTrial shows the loophole the tenant-wide settings close:
// Power BI Pro is Disabled, yet a user starts a Power BI Pro trial "on
// behalf of the organisation". The policy then manages
// tenantSettings.trialsOnBehalfOfOrganization: Disabled, the controller
// closes the path, and the next attempt is refused. The trial is cancelled
// afterwards, so the later steps count no self-service subscription.
func (d *demo) stepOrganizationTrial(ctx context.Context) ([]string, error) {
	contoso := d.tenants[0]
	if err := d.simValue(ctx, contoso, productPowerBIPro, m365sim.PolicyDisabled); err != nil {
		return nil, err
	}
	buyer := "nestor@" + contoso.domain
	trialReq := m365sim.PurchaseRequest{UserPrincipalName: buyer, SkuPartNumber: m365sim.SkuPowerBIPro, Path: m365sim.PathOrganizationTrial}
	trial, err := d.sim.Purchase(ctx, contoso.id, trialReq)
	if err != nil {
		return nil, fmt.Errorf("the organisation-trial path should be open while the policy leaves it alone: %w", err)
	}
	d.act("Power BI Pro is Disabled, yet %s starts a Power BI Pro trial on behalf of the organisation: subscription %s (trial: %t)", buyer, trial.ID, trial.IsTrial)

	patch := []byte(`{"spec":{"tenantSettings":{"trialsOnBehalfOfOrganization":"Disabled"}}}`)
	obj := &v1.TenantPurchasePolicy{}
	obj.Name, obj.Namespace = contoso.policy, demoNamespace
	actx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	if err := d.kube.Patch(actx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return nil, fmt.Errorf("patching %s: %w", contoso.policy, err)
	}
	d.act("kubectl -n %s patch tpp %s --type merge -p '%s'", demoNamespace, contoso.policy, patch)
	p, err := d.waitFor(ctx, contoso, "", func(p *v1.TenantPurchasePolicy) error {
		return all(generationObserved(p), settingIs(p, v1.SettingTrialsOnBehalfOfOrganization, "Enabled", "Disabled"), ready(p))
	})
	if err != nil {
		return nil, err
	}
	lines := []string{policyHeadline(p), settingLine(findSetting(p, v1.SettingTrialsOnBehalfOfOrganization))}
	st, err := d.sim.Settings(ctx, contoso.id)
	if err != nil {
		return lines, err
	}
	if st.IsAppAndServicesTrialEnabled {
		return lines, errors.New("simulator: isAppAndServicesTrialEnabled is still true")
	}
	lines = append(lines, "simulator: appsAndServices settings.isAppAndServicesTrialEnabled is false")

	trialReq.UserPrincipalName = "lynne@" + contoso.domain
	_, err = d.sim.Purchase(ctx, contoso.id, trialReq)
	var se *m365sim.AdminError
	if !errors.As(err, &se) || se.Status != http.StatusForbidden {
		return lines, fmt.Errorf("the next organisation trial should be refused (403), got %v", err)
	}
	d.act("%s tries the same path: refused (%d: %s)", trialReq.UserPrincipalName, se.Status, se.Message)

	if _, err := d.sim.Cancel(ctx, contoso.id, trial.ID); err != nil {
		return lines, fmt.Errorf("cancelling trial %s: %w", trial.ID, err)
	}
	d.act("an admin cancels %s's trial %s", buyer, trial.ID)
	p, err = d.syncAndWait(ctx, contoso, func(p *v1.TenantPurchasePolicy) error {
		return all(settingIs(p, v1.SettingTrialsOnBehalfOfOrganization, "Disabled", ""), selfServiceCount(p, 0), drifted(p, metav1.ConditionFalse))
	})
	if err != nil {
		return lines, err
	}
	lines = append(lines, "the next read confirms the write: "+settingLine(findSetting(p, v1.SettingTrialsOnBehalfOfOrganization)))
	return append(lines, d.eventLines(ctx, p, v1.EventAdopted)...), nil
}

// stepObserve enables Power BI Pro in Fabrikam by hand and waits for the
// Observe policy to report it while the tenant stays as it is.
func (d *demo) stepObserve(ctx context.Context) ([]string, error) {
	fabrikam := d.tenants[1]
	d.act("someone sets Power BI Pro (%s) to Enabled in Fabrikam", productPowerBIPro)
	if err := d.sim.SetPolicy(ctx, fabrikam.id, productPowerBIPro, m365sim.PolicyEnabled); err != nil {
		return nil, err
	}
	want := v1.DriftRecord{ProductID: productPowerBIPro, Expected: string(v1.PolicyDisabled), Found: string(v1.PolicyEnabled), Action: v1.DriftReported}
	p, err := d.syncAndWait(ctx, fabrikam, func(p *v1.TenantPurchasePolicy) error {
		return all(latestDrift(p, want), ready(p), drifted(p, metav1.ConditionTrue), summaryIs(p, len(m365sim.DefaultProducts()), 2))
	})
	if err != nil {
		return nil, err
	}
	lines := []string{policyHeadline(p), "drift record: " + driftLine(p.Status.DriftHistory[0]), conditionLine(p, v1.DriftedCondition)}
	if err := d.simValue(ctx, fabrikam, productPowerBIPro, m365sim.PolicyEnabled); err != nil {
		return lines, err
	}
	puts, err := d.licensingWrites(ctx, fabrikam)
	if err != nil || puts != 0 {
		return lines, errors.Join(err, fmt.Errorf("the controller wrote %d times to the Observe tenant", puts))
	}
	lines = append(lines, "simulator: Power BI Pro is still Enabled in Fabrikam; 0 licensing PUT requests ever")
	return append(lines, d.eventLines(ctx, p, v1.EventDriftDetected)...), nil
}

// syncAndWait asks for a sync now (the reconcile-now annotation) and waits
// until the controller handled it and check passes.
func (d *demo) syncAndWait(ctx context.Context, t *tenant, check func(*v1.TenantPurchasePolicy) error) (*v1.TenantPurchasePolicy, error) {
	stamp := time.Now().UTC().Format(time.RFC3339Nano)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1.RequestedAtAnnotation, stamp)
	p := &v1.TenantPurchasePolicy{}
	p.Name, p.Namespace = t.policy, demoNamespace
	actx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	if err := d.kube.Patch(actx, p, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return nil, fmt.Errorf("annotating %s: %w", t.policy, err)
	}
	d.act("kubectl -n %s annotate tpp %s %s=%s", demoNamespace, t.policy, v1.RequestedAtAnnotation, stamp)
	return d.waitFor(ctx, t, stamp, check)
}

// waitFor polls the policy until status handled the reconcile request stamp
// (when not empty) and check passes, for at most the step timeout; it fails
// at once if the controller dies.
func (d *demo) waitFor(ctx context.Context, t *tenant, stamp string, check func(*v1.TenantPurchasePolicy) error) (*v1.TenantPurchasePolicy, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.stepTimeout)
	defer cancel()
	key := client.ObjectKey{Namespace: demoNamespace, Name: t.policy}
	last := errors.New("not read yet")
	for {
		p := &v1.TenantPurchasePolicy{}
		err := d.kube.Get(ctx, key, p)
		switch {
		case err != nil:
			last = err
		case stamp != "" && p.Status.LastHandledReconcileAt != stamp:
			last = fmt.Errorf("the sync requested at %s has not been handled yet", stamp)
		default:
			if last = check(p); last == nil {
				return p, nil
			}
		}
		if gone, err := d.ctrlProc.Exited(); gone {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waited %s: %w", t.policy, d.o.stepTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

// simAgrees checks every product of the tenant in the simulator against want.
func (d *demo) simAgrees(ctx context.Context, t *tenant, want func(productID string) string) error {
	products, err := d.sim.Products(ctx, t.id)
	if err != nil {
		return err
	}
	for _, p := range products {
		if p.PolicyValue != want(p.ID) {
			return fmt.Errorf("simulator: %s %s is %s, want %s", t.name, p.ID, p.PolicyValue, want(p.ID))
		}
	}
	return nil
}

// simValue checks one product's value in the simulator.
func (d *demo) simValue(ctx context.Context, t *tenant, productID, want string) error {
	got, err := d.sim.Policy(ctx, t.id, productID)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("simulator: %s %s is %s, want %s", t.name, productID, got, want)
	}
	return nil
}

// licensingWrites counts the licensing API writes the tenant received.
func (d *demo) licensingWrites(ctx context.Context, t *tenant) (int, error) {
	log, err := d.sim.Requests(ctx, t.id)
	if err != nil {
		return 0, err
	}
	return log.Counts["licensing PUT"], nil
}
