package controllers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// entry is the part of a product's status entry act decides.
type entry struct {
	ID, Observed, Adopted string
	Corrections           int64
	Rejected              bool
}

// TestAct runs act over a tenant and what status recorded before, on a fake
// licensing API, and checks what a user sees: the status entries, the
// lifetime counters, the drift records, the Events queued and the writes
// sent.
func TestAct(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const gen = 4
	item := func(id, value string) licensing.Item {
		return licensing.Item{ProductID: id, ProductName: "name of " + id, PolicyValue: value}
	}
	// converged is a status entry the controller set to Disabled earlier.
	converged := func(id string) v1.ProductStatus {
		return v1.ProductStatus{ProductID: id, Desired: v1.PolicyDisabled, Observed: "Disabled", AdoptedValue: "Enabled", Source: v1.SourceDefault}
	}
	throttledOn := func(id string) func(context.Context, string, string) error {
		return func(_ context.Context, got, _ string) error {
			if got == id {
				return &m365.Error{Kind: m365.Throttled, Op: "set product " + id, StatusCode: 429, RetryAfter: 10 * time.Second}
			}
			return nil
		}
	}
	rejects := func(id string) func(context.Context, string, string) error {
		return func(_ context.Context, got, _ string) error {
			if got == id {
				return &m365.Error{Kind: m365.BadRequest, Op: "set product " + id, StatusCode: 400, Reason: "Policy value not allowed for this product."}
			}
			return nil
		}
	}
	cases := map[string]struct {
		reason string
		mode   v1.Mode
		rules  []v1.ProductRule
		before []v1.ProductStatus
		tenant []licensing.Item
		// write answers a PUT; nil accepts every one.
		write func(ctx context.Context, id, value string) error

		wantEntries  []entry
		wantCounters v1.Counters
		wantDrift    []string
		wantEvents   []string
		wantWrites   []string
		// wantErr: "" (went on), "waiting" (stopped by a throttle) or the
		// reason of the soft stall left for the outcome.
		wantErr string
	}{
		"adoption": {
			reason: "the first sight of a tenant records adoption values, not drift, and sets what differs",
			mode:   v1.ModeEnforce,
			tenant: []licensing.Item{item("A", "Enabled"), item("B", "Disabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Corrections: 1},
				{ID: "B", Observed: "Disabled", Adopted: "Disabled"},
			},
			wantEvents: []string{"Normal Adopted: adopted 2 products of tenant t; 1 differed from the policy: A"},
			wantWrites: []string{"A=Disabled"},
		},
		"new product": {
			reason: "a product Microsoft adds after adoption is caught by default, announced, and has no adoption value",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Disabled"), item("N", "Enabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled"},
				{ID: "N", Observed: "Disabled", Corrections: 1},
			},
			wantCounters: v1.Counters{NewProducts: 1},
			wantEvents:   []string{"Normal NewProductDetected: Microsoft added N (name of N) as Enabled; default sets it to Disabled"},
			wantWrites:   []string{"N=Disabled"},
		},
		"drift in Enforce": {
			reason: "a converged product flipped by hand is one drift, corrected at once",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Enabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Corrections: 1},
			},
			wantCounters: v1.Counters{DriftDetected: 1, DriftCorrected: 1},
			wantDrift:    []string{"A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy",
				"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled",
			},
			wantWrites: []string{"A=Disabled"},
		},
		"drift in Observe": {
			reason: "Observe records the transition and writes nothing",
			mode:   v1.ModeObserve,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Enabled")},
			write:  func(context.Context, string, string) error { return errUnexpectedWrite },
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 1},
			wantDrift:    []string{"A Disabled->Enabled Reported"},
			wantEvents:   []string{"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy"},
		},
		"throttle in the middle of the list": {
			reason: "a 429 stops the writes; status still records every product, and the drift not written is a failed correction",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A"), converged("B"), converged("C")},
			tenant: []licensing.Item{item("A", "Enabled"), item("B", "Enabled"), item("C", "Enabled")},
			write:  throttledOn("B"),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Corrections: 1},
				{ID: "B", Observed: "Enabled", Adopted: "Enabled"},
				{ID: "C", Observed: "Enabled", Adopted: "Enabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 3, DriftCorrected: 1},
			wantDrift:    []string{"C Disabled->Enabled CorrectionFailed", "B Disabled->Enabled CorrectionFailed", "A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy",
				"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled",
				"Warning DriftDetected: B (name of B) changed from Disabled to Enabled outside this policy",
				"Warning WriteFailed: setting B (name of B) to Disabled failed: set product B: Throttled (HTTP 429); retry after 10s",
				"Warning DriftDetected: C (name of C) changed from Disabled to Enabled outside this policy",
			},
			wantWrites: []string{"A=Disabled", "B=Disabled"},
			wantErr:    "waiting",
		},
		"rejected value": {
			reason: "a 400 is recorded on the product and soft-stalls the run; the other products are still written",
			mode:   v1.ModeEnforce,
			rules:  []v1.ProductRule{{ProductID: "A", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
			before: []v1.ProductStatus{converged("A"), converged("B")},
			tenant: []licensing.Item{item("A", "Disabled"), item("B", "Enabled")},
			write:  rejects("A"),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Rejected: true},
				{ID: "B", Observed: "Disabled", Adopted: "Enabled", Corrections: 1},
			},
			wantCounters: v1.Counters{DriftDetected: 1, DriftCorrected: 1},
			wantDrift:    []string{"B Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning WriteFailed: setting A (name of A) to OnlyTrialsWithoutPaymentMethod failed: set product A: BadRequest (HTTP 400): Policy value not allowed for this product.",
				"Warning DriftDetected: B (name of B) changed from Disabled to Enabled outside this policy",
				"Normal DriftCorrected: set B (name of B) back from Enabled to Disabled",
			},
			wantWrites: []string{"A=OnlyTrialsWithoutPaymentMethod", "B=Disabled"},
			wantErr:    v1.ReasonRejected,
		},
		"rejected value is not sent again": {
			reason: "a value Microsoft refused for this generation stays refused: no PUT, still a soft stall",
			mode:   v1.ModeEnforce,
			rules:  []v1.ProductRule{{ProductID: "A", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
			before: []v1.ProductStatus{func() v1.ProductStatus {
				ps := converged("A")
				ps.Rejected, ps.RejectedGeneration = "Policy value not allowed for this product.", gen
				return ps
			}()},
			tenant:      []licensing.Item{item("A", "Disabled")},
			write:       func(context.Context, string, string) error { return errUnexpectedWrite },
			wantEntries: []entry{{ID: "A", Observed: "Disabled", Adopted: "Enabled", Rejected: true}},
			wantErr:     v1.ReasonRejected,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Generation: gen},
				Spec: v1.TenantPurchasePolicySpec{TenantID: "t", TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: tc.mode, Default: v1.RulePolicy(v1.PolicyDisabled), Products: tc.rules}}}
			p.Status.Products = tc.before
			var writes []string
			write := tc.write
			if write == nil {
				write = func(context.Context, string, string) error { return nil }
			}
			fake := fakePolicies{setProduct: func(ctx context.Context, id, value string) error {
				writes = append(writes, id+"="+value)
				return write(ctx, id, value)
			}}
			pl := plan.Compute(&p.Spec, tc.tenant, nil, now)
			s := &syncState{policy: p, base: p.DeepCopy(), now: now, policies: fake, plan: &pl}

			err := (&TenantPurchasePolicyReconciler{}).act(context.Background(), s)

			var gotErr string
			if _, ok := asWait(err); ok {
				gotErr = "waiting"
			} else if err != nil {
				t.Fatalf("%s: act stopped with %v", tc.reason, err)
			}
			if st, ok := asStalled(s.softErr); ok && gotErr == "" {
				gotErr = st.reason
			}
			var entries []entry
			for _, ps := range p.Status.Products {
				entries = append(entries, entry{ID: ps.ProductID, Observed: ps.Observed, Adopted: ps.AdoptedValue, Corrections: ps.Corrections, Rejected: ps.Rejected != ""})
			}
			var drift []string
			for _, d := range p.Status.DriftHistory {
				drift = append(drift, fmt.Sprintf("%s %s->%s %s", d.ProductID, d.Expected, d.Found, d.Action))
			}
			var events []string
			for _, e := range s.events {
				events = append(events, e.eventType+" "+e.reason+": "+e.note)
			}
			got := []any{entries, p.Status.Counters, drift, events, writes, gotErr}
			want := []any{tc.wantEntries, tc.wantCounters, tc.wantDrift, tc.wantEvents, tc.wantWrites, tc.wantErr}
			for i, what := range []string{"status entries", "counters", "drift records", "queued Events", "writes", "error"} {
				if diff := cmp.Diff(want[i], got[i]); diff != "" {
					t.Errorf("%s\n%s (-want +got):\n%s", tc.reason, what, strings.TrimSpace(diff))
				}
			}
		})
	}
}

func TestFailedDrift(t *testing.T) {
	rec := func(id string, a v1.DriftAction) v1.DriftRecord { return v1.DriftRecord{ProductID: id, Action: a} }
	cases := map[string]struct {
		reason  string
		history []v1.DriftRecord
		want    *v1.DriftRecord
	}{
		"newest record failed": {
			reason:  "a throttled correction is finished by the next write, which must count as correcting it",
			history: []v1.DriftRecord{rec("A", v1.DriftCorrectionFailed), rec("A", v1.DriftCorrected)},
			want:    &v1.DriftRecord{ProductID: "A", Action: v1.DriftCorrectionFailed},
		},
		"an older failure was already followed by a newer drift": {
			reason:  "only the newest record of the product speaks for it",
			history: []v1.DriftRecord{rec("A", v1.DriftCorrected), rec("A", v1.DriftCorrectionFailed)},
		},
		"another product failed": {
			reason:  "records of other products do not count",
			history: []v1.DriftRecord{rec("B", v1.DriftCorrectionFailed)},
		},
		"reported in Observe mode": {
			reason:  "a reported drift was never attempted",
			history: []v1.DriftRecord{rec("A", v1.DriftReported)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, failedDrift(tc.history, "A")); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
