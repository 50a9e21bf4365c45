package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// The policy set step: Contoso is a Microsoft partner with GDAP
// relationships to Fabrikam and to a new customer, Northwind; one set keeps
// the partner's baseline in all three.
const (
	setName       = "baseline"
	setResource   = "tenantpurchasepolicysets"
	northwindID   = "3c8a1f2e-7b4d-4e6a-9f01-5d2c8b7a6e43"
	northwindName = "Northwind"
)

// stepPolicySet makes Contoso a partner of Fabrikam and Northwind (its app
// consented in both), applies a set listing Contoso (in Observe: its
// hand-written policy enforces it) and Fabrikam and discovering the
// customers, and waits for three Ready children.
func (d *demo) stepPolicySet(ctx context.Context) ([]string, error) {
	partner, fabrikam := d.tenants[0], d.tenants[1]
	if err := d.becomePartner(ctx, partner, fabrikam); err != nil {
		return nil, err
	}
	set := baselineSet(partner, fabrikam)
	actx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	if err := d.kube.Create(actx, set); err != nil {
		return nil, fmt.Errorf("creating the set: %w", err)
	}
	d.act("kubectl apply: TenantPurchasePolicySet %s/%s lists contoso (override: Observe) and fabrikam, and discovers %s's customers", demoNamespace, setName, partner.name)
	got, err := d.waitForSet(ctx, func(s *v1.TenantPurchasePolicySet) error {
		return all(setConditionIs(s, v1.ReadyCondition, metav1.ConditionTrue), setReadyChildren(s, 3))
	})
	if err != nil {
		return nil, err
	}
	d.printSetTable(ctx)
	children, err := d.setChildren(ctx)
	if err != nil {
		return nil, err
	}
	lines := []string{setHeadline(got), discoveryLine(got, partner.name)}
	for _, c := range children {
		lines = append(lines, childLine(&c))
	}
	if err := d.simAgreesID(ctx, northwindID, northwindName, baselineValue); err != nil {
		return lines, err
	}
	lines = append(lines, "simulator: Northwind has every product Disabled except Copilot (OnlyTrialsWithoutPaymentMethod)")
	calls, err := d.sim.Requests(ctx, partner.id)
	if err != nil {
		return lines, err
	}
	lines = append(lines, fmt.Sprintf("simulator: %d delegatedAdminCustomers request(s) to the partner, however often the children synced",
		calls.Counts["graph GET delegatedAdminCustomers"]))
	lines = append(lines, d.eventLines(ctx, got, v1.EventCustomerDiscovered)...)
	return append(lines, d.eventLines(ctx, got, v1.EventChildCreated)...), nil
}

// becomePartner adds Northwind, consents the partner's app in Fabrikam and
// Northwind, and gives the partner an admin relationship with each.
func (d *demo) becomePartner(ctx context.Context, partner, fabrikam *tenant) error {
	if _, err := d.sim.AddTenant(ctx, m365sim.TenantConfig{ID: northwindID, Name: northwindName}); err != nil {
		return fmt.Errorf("adding Northwind: %w", err)
	}
	app := m365sim.AppRequest{ClientID: partner.clientID, Secret: partner.secret, Permissions: m365sim.AllPermissions}
	for _, id := range []string{fabrikam.id, northwindID} {
		if err := d.sim.RegisterApp(ctx, id, app); err != nil {
			return fmt.Errorf("consenting the partner app in %s: %w", id, err)
		}
		if err := d.sim.AddCustomer(ctx, partner.id, id); err != nil {
			return fmt.Errorf("relating %s: %w", id, err)
		}
	}
	d.act("%s becomes a partner: its app %s is consented in Fabrikam and in a new tenant, %s (%s), and it has GDAP relationships with both (simulator admin API)",
		partner.name, partner.clientID, northwindName, northwindID)
	return nil
}

// baselineSet is the partner's set: the template of the Contoso policy
// (Enforce, default Disabled) with Copilot trials only, Contoso in Observe.
func baselineSet(partner, fabrikam *tenant) *v1.TenantPurchasePolicySet {
	track := false
	observe := v1.ModeObserve
	return &v1.TenantPurchasePolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: setName, Namespace: demoNamespace},
		Spec: v1.TenantPurchasePolicySetSpec{
			Template: v1.PolicySetTemplate{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:          v1.Auth{ClientID: partner.clientID, ClientSecretRef: &v1.SecretKeyRef{Name: partner.policy + "-app", Key: secretKey}},
				Mode:          v1.ModeEnforce,
				Default:       v1.RulePolicy(v1.PolicyDisabled),
				Products:      []v1.ProductRule{{ProductID: productCopilot, Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
				Interval:      metav1.Duration{Duration: time.Minute},
				Subscriptions: v1.SubscriptionTracking{Track: &track},
			}},
			Tenants: []v1.SetTenant{
				{TenantID: partner.id, Name: partner.policy, Overrides: &v1.PolicyOverrides{Mode: &observe}},
				{TenantID: fabrikam.id, Name: fabrikam.policy},
			},
			Discovery: &v1.SetDiscovery{DelegatedAdminCustomers: &v1.DelegatedAdminCustomersDiscovery{
				PartnerTenantID: partner.id, Interval: metav1.Duration{Duration: time.Hour}}},
		},
	}
}

// baselineValue is what the set's template wants for a product.
func baselineValue(productID string) string {
	if productID == productCopilot {
		return m365sim.PolicyTrialsOnly
	}
	return m365sim.PolicyDisabled
}

// waitForSet polls the set until it observed its generation and check passes.
func (d *demo) waitForSet(ctx context.Context, check func(*v1.TenantPurchasePolicySet) error) (*v1.TenantPurchasePolicySet, error) {
	ctx, cancel := context.WithTimeout(ctx, d.o.stepTimeout)
	defer cancel()
	last := errors.New("not read yet")
	for {
		s := &v1.TenantPurchasePolicySet{}
		switch err := d.kube.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: setName}, s); {
		case err != nil:
			last = err
		case s.Status.ObservedGeneration != s.Generation:
			last = fmt.Errorf("generation %d not observed yet", s.Generation)
		default:
			if last = check(s); last == nil {
				return s, nil
			}
		}
		if gone, err := d.ctrlProc.Exited(); gone {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waited %s: %w", setName, d.o.stepTimeout, last)
		case <-time.After(pollInterval):
		}
	}
}

func setConditionIs(s *v1.TenantPurchasePolicySet, condType string, want metav1.ConditionStatus) error {
	c := meta.FindStatusCondition(s.Status.Conditions, condType)
	switch {
	case c == nil:
		return fmt.Errorf("no %s condition yet", condType)
	case c.Status != want:
		return fmt.Errorf("%s is %s (%s: %s), want %s", condType, c.Status, c.Reason, c.Message, want)
	}
	return nil
}

func setReadyChildren(s *v1.TenantPurchasePolicySet, want int) error {
	if sum := s.Status.Summary; int(sum.Ready) != want || int(sum.Tenants) != want {
		return fmt.Errorf("%d of %d children Ready, want %d of %d", sum.Ready, sum.Tenants, want, want)
	}
	return nil
}

// setChildren lists the set's children by its label, by name.
func (d *demo) setChildren(ctx context.Context) ([]v1.TenantPurchasePolicy, error) {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	var list v1.TenantPurchasePolicyList
	if err := d.kube.List(ctx, &list, client.InNamespace(demoNamespace), client.MatchingLabels{v1.SetLabel: setName}); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// printSetTable prints `kubectl get tpps -A` from the API server's Table.
func (d *demo) printSetTable(ctx context.Context) {
	fmt.Fprintln(d.out, "\n$ kubectl get tpps -A")
	t, err := fetchTable(ctx, d.tables, setResource)
	if err == nil {
		err = renderTable(d.out, t, true)
	}
	if err != nil {
		fmt.Fprintln(d.out, "  (table unavailable:", err, ")")
	}
}

func setHeadline(s *v1.TenantPurchasePolicySet) string {
	c := meta.FindStatusCondition(s.Status.Conditions, v1.ReadyCondition)
	if c == nil {
		return fmt.Sprintf("%s/%s: Ready=<none>", s.Namespace, s.Name)
	}
	return fmt.Sprintf("%s/%s: %s=%s %s: %s", s.Namespace, s.Name, c.Type, c.Status, c.Reason, c.Message)
}

func discoveryLine(s *v1.TenantPurchasePolicySet, partner string) string {
	st := s.Status.Discovery
	if st == nil {
		return "discovery: none yet"
	}
	return fmt.Sprintf("discovery: %s (the partner) listed %d customers at %s; %d tenants in the set (2 listed, Fabrikam both listed and discovered)",
		partner, st.Count, stamp(st.LastDiscoveryTime), s.Status.Summary.Tenants)
}

func childLine(c *v1.TenantPurchasePolicy) string {
	return fmt.Sprintf("child %s: tenant %s, %s, %s", c.Name, c.Spec.TenantID, c.Spec.Mode, conditionText(c, v1.ReadyCondition))
}

// simAgreesID checks every product of a tenant in the simulator against want.
func (d *demo) simAgreesID(ctx context.Context, id, name string, want func(productID string) string) error {
	return d.simAgrees(ctx, &tenant{id: id, name: name}, want)
}
