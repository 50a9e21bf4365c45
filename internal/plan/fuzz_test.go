package plan

import (
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// FuzzCompute feeds Compute whatever a tenant may report (duplicates, empty
// IDs, odd values) and whatever rules a spec may hold, and checks what every
// caller relies on: it never panics, every product reported gets exactly one
// target (the first report of it), nothing else gets one, products come
// sorted, an Unmanaged product never gets a desired value, and a desired
// value is always one Microsoft knows.
//
// Inputs are compact strings: products "ID=value;ID=value", rules
// "ID:policy:untilSeconds;..." (untilSeconds from now, empty for none), offer
// types "TYPE=value;..." and offer rules "TYPE:policy;...".
func FuzzCompute(f *testing.F) {
	f.Add("CFQ7TTC0MM8R=Enabled;CFQ7TTC0H9MP=Disabled", "CFQ7TTC0MM8R:Unmanaged:", "Disabled", "SaaS=Enabled", "SaaS:Disabled", int64(0))
	f.Add("A=Enabled;A=Disabled;=Enabled;B=", "A:Disabled:-60;B:Enabled:60;Z:Enabled:", "Unmanaged", "", "DYNAMICSBC:Enabled", int64(1))
	f.Fuzz(func(t *testing.T, products, rules, def, offers, offerRules string, nowUnix int64) {
		now := time.Unix(nowUnix, 0).UTC()
		spec := &v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
			Default: v1.RulePolicy(def), Products: parseRules(rules, now), OfferTypes: parseOfferRules(offerRules)}}
		items := parseItems(products, false)
		p := Compute(spec, items, parseItems(offers, true), now)

		first := map[string]licensing.Item{}
		for _, it := range items {
			if _, dup := first[it.ProductID]; !dup && it.ProductID != "" {
				first[it.ProductID] = it
			}
		}
		got := map[string]int{}
		for i, tg := range p.Products {
			got[tg.ID]++
			if i > 0 && p.Products[i-1].ID >= tg.ID {
				t.Errorf("products not sorted by ID at %d: %q then %q", i, p.Products[i-1].ID, tg.ID)
			}
			if it, ok := first[tg.ID]; !ok {
				t.Errorf("target %q for a product the tenant did not report", tg.ID)
			} else if tg.Observed != it.PolicyValue {
				t.Errorf("%s: observed %q, the first report says %q", tg.ID, tg.Observed, it.PolicyValue)
			}
		}
		for id := range first {
			if got[id] != 1 {
				t.Errorf("product %q reported, got %d targets", id, got[id])
			}
		}
		for _, tg := range append(append([]Target{}, p.Products...), p.OfferTypes...) {
			if (tg.Source == v1.SourceUnmanaged) != (tg.Desired == "") {
				t.Errorf("%s: source %s with desired %q", tg.ID, tg.Source, tg.Desired)
			}
			switch tg.Desired {
			case "", v1.PolicyEnabled, v1.PolicyDisabled, v1.PolicyOnlyTrials:
			default:
				t.Errorf("%s: desired %q is no value Microsoft knows", tg.ID, tg.Desired)
			}
		}
	})
}

func parseItems(s string, offer bool) []licensing.Item {
	var out []licensing.Item
	for _, part := range strings.Split(s, ";") {
		if part == "" {
			continue
		}
		id, value, _ := strings.Cut(part, "=")
		it := licensing.Item{ProductID: id, ProductName: "name of " + id, PolicyValue: value}
		if offer {
			it.OfferType = id
		}
		out = append(out, it)
	}
	return out
}

func parseRules(s string, now time.Time) []v1.ProductRule {
	var out []v1.ProductRule
	for _, part := range strings.Split(s, ";") {
		fields := strings.SplitN(part, ":", 3)
		if len(fields) < 2 {
			continue
		}
		r := v1.ProductRule{ProductID: fields[0], Policy: v1.RulePolicy(fields[1])}
		if len(fields) == 3 {
			if secs, err := strconv.ParseInt(fields[2], 10, 32); err == nil {
				r.Until = &metav1.Time{Time: now.Add(time.Duration(secs) * time.Second)}
			}
		}
		out = append(out, r)
	}
	return out
}

func parseOfferRules(s string) []v1.OfferTypeRule {
	var out []v1.OfferTypeRule
	for _, part := range strings.Split(s, ";") {
		if offerType, policy, ok := strings.Cut(part, ":"); ok {
			out = append(out, v1.OfferTypeRule{OfferType: v1.OfferType(offerType), Policy: v1.PolicyValue(policy)})
		}
	}
	return out
}
