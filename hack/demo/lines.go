package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// eventWait bounds how long a step waits for the Event that goes with what
// it observed (Events are sent asynchronously); a missing Event is only not
// shown.
const eventWait = 3 * time.Second

// Status lines: short, kubectl-describe-like renderings of status parts.

// policyHeadline names the policy, its mode and its Ready condition.
func policyHeadline(p *v1.TenantPurchasePolicy) string {
	return fmt.Sprintf("%s/%s (%s): %s", p.Namespace, p.Name, p.Spec.Mode, conditionText(p, v1.ReadyCondition))
}

func conditionLine(p *v1.TenantPurchasePolicy, condType string) string {
	return conditionText(p, condType)
}

func conditionText(p *v1.TenantPurchasePolicy, condType string) string {
	c := meta.FindStatusCondition(p.Status.Conditions, condType)
	if c == nil {
		return condType + "=<none>"
	}
	return fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message)
}

// adoptionLines say how much the tenant differed at adoption and show two
// products.
func adoptionLines(p *v1.TenantPurchasePolicy) []string {
	differed := 0
	for _, ps := range p.Status.Products {
		if ps.Desired != "" && ps.AdoptedValue != string(ps.Desired) {
			differed++
		}
	}
	return []string{
		fmt.Sprintf("adopted %d products; %d differed from the policy and were set (recorded as adoption, not drift)", len(p.Status.Products), differed),
		productLine(findProduct(p, productCopilot)),
		productLine(findProduct(p, productPowerBIPro)),
	}
}

// productLine renders one product's status.
func productLine(ps *v1.ProductStatus) string {
	if ps == nil {
		return "product: <missing>"
	}
	adopted := "not there at adoption"
	if ps.AdoptedValue != "" {
		adopted = "adopted as " + ps.AdoptedValue
	}
	return fmt.Sprintf("product %s %s: desired %s (%s), observed %s, %s, %d correction(s), last %s",
		ps.ProductID, ps.Name, ps.Desired, ps.Source, ps.Observed, adopted, ps.Corrections, stamp(ps.LastCorrectionTime))
}

func driftLine(d v1.DriftRecord) string {
	what := d.ProductID
	if d.Setting != "" {
		what = "tenant setting " + string(d.Setting)
	}
	return fmt.Sprintf("%s %s -> %s at %s: %s", what, d.Expected, d.Found, stamp(&d.DetectedAt), d.Action)
}

// settingLine renders one tenant setting's status.
func settingLine(t *v1.TenantSettingStatus) string {
	if t == nil {
		return "tenant setting: <missing>"
	}
	pending := ""
	if t.PendingValue != "" {
		pending = fmt.Sprintf(", written %s (to be confirmed by the next read)", t.PendingValue)
	}
	return fmt.Sprintf("tenant setting %s (%s): desired %s, observed %s%s, adopted as %s, %d correction(s), last %s",
		t.Setting, t.Resource, t.Desired, t.Observed, pending, t.AdoptedValue, t.Corrections, stamp(t.LastCorrectionTime))
}

func countersLine(p *v1.TenantPurchasePolicy) string {
	c := p.Status.Counters
	return fmt.Sprintf("counters: driftDetected=%d driftCorrected=%d newProducts=%d takeovers=%d cancellations=%d",
		c.DriftDetected, c.DriftCorrected, c.NewProducts, c.Takeovers, c.Cancellations)
}

func selfServiceLine(e *v1.SelfServiceSubscription) string {
	if e == nil {
		return "<missing>"
	}
	kind := "paid"
	if e.Trial {
		kind = "trial"
	}
	return fmt.Sprintf("%s %s, %d seat(s), %s, %s, bought by %s at %s", e.ID, e.SkuPartNumber, e.Seats, kind, e.Status, e.BuyerID, stamp(e.Created))
}

func handoverLine(h *v1.HandoverRecord) string {
	if h == nil {
		return "<missing>"
	}
	return fmt.Sprintf("%s %s %s, detected at %s (buyer %s)", h.SubscriptionID, h.SkuPartNumber, h.Verdict, stamp(&h.DetectedAt), h.BuyerID)
}

// stamp renders a time as RFC 3339 UTC, or "-".
func stamp(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// eventLines shows the newest Event with the given reason about the object
// (a policy or a set), waiting briefly for it.
func (d *demo) eventLines(ctx context.Context, p client.Object, reason string) []string {
	deadline := time.Now().Add(eventWait)
	for {
		if e := d.newestEvent(ctx, p, reason); e != nil {
			return []string{fmt.Sprintf("event: %s %s: %s", e.Type, e.Reason, e.Note)}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}

// newestEvent returns the newest Event about p with the given reason.
func (d *demo) newestEvent(ctx context.Context, p client.Object, reason string) *eventsv1.Event {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	var list eventsv1.EventList
	if err := d.kube.List(ctx, &list, client.InNamespace(p.GetNamespace())); err != nil {
		return nil
	}
	var found []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == p.GetUID() && strings.EqualFold(e.Reason, reason) {
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].CreationTimestamp.Before(&found[j].CreationTimestamp) })
	return &found[len(found)-1]
}
