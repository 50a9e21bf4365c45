package main

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Checks on a policy's status: each returns nil when the status shows what a
// step expects, or an error saying what it shows instead.

// Refund windows (Microsoft Learn): full refund within 24 hours of the
// purchase, prorated within 7 days.
const (
	fullRefundWindow     = 24 * time.Hour
	proratedRefundWindow = 7 * 24 * time.Hour
)

// all returns the first failed check.
func all(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}

func conditionIs(p *v1.TenantPurchasePolicy, condType string, want metav1.ConditionStatus) error {
	c := meta.FindStatusCondition(p.Status.Conditions, condType)
	if c == nil {
		return fmt.Errorf("no %s condition yet", condType)
	}
	if c.Status != want {
		return fmt.Errorf("%s is %s (%s: %s), want %s", condType, c.Status, c.Reason, c.Message, want)
	}
	return nil
}

func ready(p *v1.TenantPurchasePolicy) error {
	return conditionIs(p, v1.ReadyCondition, metav1.ConditionTrue)
}

func drifted(p *v1.TenantPurchasePolicy, want metav1.ConditionStatus) error {
	return conditionIs(p, v1.DriftedCondition, want)
}

func summaryIs(p *v1.TenantPurchasePolicy, managed, drifted int) error {
	s := p.Status.Summary
	if int(s.Managed) != managed || int(s.Drifted) != drifted {
		return fmt.Errorf("summary shows %d managed, %d drifted; want %d managed, %d drifted", s.Managed, s.Drifted, managed, drifted)
	}
	return nil
}

func findProduct(p *v1.TenantPurchasePolicy, id string) *v1.ProductStatus {
	for i := range p.Status.Products {
		if p.Status.Products[i].ProductID == id {
			return &p.Status.Products[i]
		}
	}
	return nil
}

// productIs checks that a product is desired and observed at value, from source.
func productIs(p *v1.TenantPurchasePolicy, id string, value v1.PolicyValue, source v1.DesiredSource) error {
	ps := findProduct(p, id)
	switch {
	case ps == nil:
		return fmt.Errorf("status lists no product %s", id)
	case ps.Desired != value || ps.Observed != string(value) || ps.Source != source:
		return fmt.Errorf("product %s is desired %s (%s), observed %s; want %s (%s) observed", id, ps.Desired, ps.Source, ps.Observed, value, source)
	}
	return nil
}

func noDriftRecords(p *v1.TenantPurchasePolicy) error {
	if n := len(p.Status.DriftHistory); n != 0 {
		return fmt.Errorf("driftHistory has %d records, want none", n)
	}
	return nil
}

// latestDrift checks the newest drift record against want (detectedAt aside).
func latestDrift(p *v1.TenantPurchasePolicy, want v1.DriftRecord) error {
	if len(p.Status.DriftHistory) == 0 {
		return fmt.Errorf("no drift record yet")
	}
	got := p.Status.DriftHistory[0]
	if got.ProductID != want.ProductID || got.Expected != want.Expected || got.Found != want.Found || got.Action != want.Action {
		return fmt.Errorf("newest drift record is %s; want %s %s -> %s, %s", driftLine(got), want.ProductID, want.Expected, want.Found, want.Action)
	}
	return nil
}

func newProducts(p *v1.TenantPurchasePolicy, want int64) error {
	if got := p.Status.Counters.NewProducts; got != want {
		return fmt.Errorf("counters.newProducts is %d, want %d", got, want)
	}
	return nil
}

func takeovers(p *v1.TenantPurchasePolicy, want int64) error {
	if got := p.Status.Counters.Takeovers; got != want {
		return fmt.Errorf("counters.takeovers is %d, want %d", got, want)
	}
	return nil
}

func findSelfService(p *v1.TenantPurchasePolicy, id string) *v1.SelfServiceSubscription {
	if p.Status.Subscriptions == nil {
		return nil
	}
	for i := range p.Status.Subscriptions.SelfService {
		if p.Status.Subscriptions.SelfService[i].ID == id {
			return &p.Status.Subscriptions.SelfService[i]
		}
	}
	return nil
}

// selfServiceIs checks that the purchase is listed, active, with the refund
// windows counted from its purchase.
func selfServiceIs(p *v1.TenantPurchasePolicy, sub m365sim.Subscription) error {
	e := findSelfService(p, sub.ID)
	switch {
	case e == nil:
		return fmt.Errorf("status lists no self-service subscription %s", sub.ID)
	case e.Status != m365sim.StatusEnabled || e.BuyerID != sub.OwnerID:
		return fmt.Errorf("self-service subscription %s is %s bought by %s; want Enabled bought by %s", sub.ID, e.Status, e.BuyerID, sub.OwnerID)
	case e.FullRefundUntil == nil || !e.FullRefundUntil.Time.Equal(sub.CreatedDateTime.Add(fullRefundWindow)):
		return fmt.Errorf("fullRefundUntil is %s, want %s", stamp(e.FullRefundUntil), sub.CreatedDateTime.Add(fullRefundWindow).UTC().Format(time.RFC3339))
	case e.ProratedRefundUntil == nil || !e.ProratedRefundUntil.Time.Equal(sub.CreatedDateTime.Add(proratedRefundWindow)):
		return fmt.Errorf("proratedRefundUntil is %s, want %s", stamp(e.ProratedRefundUntil), sub.CreatedDateTime.Add(proratedRefundWindow).UTC().Format(time.RFC3339))
	}
	return nil
}

func selfServiceCount(p *v1.TenantPurchasePolicy, want int) error {
	if got := int(p.Status.Summary.SelfServiceSubscriptions); got != want {
		return fmt.Errorf("summary shows %d active self-service subscriptions, want %d", got, want)
	}
	return nil
}

func findHandover(p *v1.TenantPurchasePolicy, subscriptionID string) *v1.HandoverRecord {
	if p.Status.Subscriptions == nil {
		return nil
	}
	for i := range p.Status.Subscriptions.Handovers {
		if p.Status.Subscriptions.Handovers[i].SubscriptionID == subscriptionID {
			return &p.Status.Subscriptions.Handovers[i]
		}
	}
	return nil
}

func handoverIs(p *v1.TenantPurchasePolicy, subscriptionID string, verdict v1.HandoverVerdict) error {
	h := findHandover(p, subscriptionID)
	switch {
	case h == nil:
		return fmt.Errorf("no handover record for %s yet", subscriptionID)
	case h.Verdict != verdict:
		return fmt.Errorf("handover of %s recorded as %s (%s), want %s", subscriptionID, h.Verdict, h.Evidence, verdict)
	}
	return nil
}

func generationObserved(p *v1.TenantPurchasePolicy) error {
	if p.Status.ObservedGeneration != p.Generation {
		return fmt.Errorf("generation %d not observed yet (status has %d)", p.Generation, p.Status.ObservedGeneration)
	}
	return nil
}

func findSetting(p *v1.TenantPurchasePolicy, name v1.TenantSettingName) *v1.TenantSettingStatus {
	for i := range p.Status.TenantSettings {
		if p.Status.TenantSettings[i].Setting == name {
			return &p.Status.TenantSettings[i]
		}
	}
	return nil
}

// settingIs checks a tenant setting's observed value and, when pending is
// not empty, the value written and not yet confirmed.
func settingIs(p *v1.TenantPurchasePolicy, name v1.TenantSettingName, observed, pending v1.SettingValue) error {
	row := findSetting(p, name)
	switch {
	case row == nil:
		return fmt.Errorf("status has no tenant setting %s", name)
	case row.Observed != observed || row.PendingValue != pending:
		return fmt.Errorf("tenant setting %s: observed %q pending %q, want %q and %q", name, row.Observed, row.PendingValue, observed, pending)
	}
	return nil
}
