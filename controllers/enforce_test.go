package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// entry is the part of a product's status entry act decides.
type entry struct {
	ID, Observed, Adopted, Pending string
	Corrections                    int64
	Unconfirmed                    int32
	Rejected, Missing              bool
}

// TestAct runs act over a tenant and what status recorded before, on a fake
// licensing API, and checks what a user sees: the status entries, the
// lifetime counters, the drift records, the Events queued and the writes
// sent.
func TestAct(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(-d)} }
	const gen = 4
	item := func(id, value string) licensing.Item {
		return licensing.Item{ProductID: id, ProductName: "name of " + id, PolicyValue: value}
	}
	// converged is a status entry the controller set to Disabled earlier.
	converged := func(id string) v1.ProductStatus {
		return v1.ProductStatus{ProductID: id, Name: "name of " + id, Desired: v1.PolicyDisabled, Observed: "Disabled", AdoptedValue: "Enabled", Source: v1.SourceDefault}
	}
	with := func(ps v1.ProductStatus, edit func(*v1.ProductStatus)) v1.ProductStatus { edit(&ps); return ps }
	failsOn := func(id string, err error) writeFunc {
		return func(ctx context.Context, got, value string) (*licensing.Item, error) {
			if got == id {
				return nil, err
			}
			return applies(ctx, got, value)
		}
	}
	throttled := func(id string) error {
		return &m365.Error{Kind: m365.Throttled, Op: "set product " + id, StatusCode: 429, RetryAfter: 10 * time.Second}
	}
	rejected := &m365.Error{Kind: m365.BadRequest, Op: "set product A", StatusCode: 400, Code: "BadRequest", Reason: "Policy value not allowed for this product."}
	lagging := &m365.Error{Kind: m365.NotFound, Op: "set product N", StatusCode: 404, Code: "Unknown", Reason: "GetProductDetailsByProductIdAsync failed"}
	answers := func(value string) writeFunc { // accepted, Microsoft answers value and applies nothing
		return func(_ context.Context, id, _ string) (*licensing.Item, error) {
			return &licensing.Item{ProductID: id, PolicyValue: value}, nil
		}
	}
	silent := func(context.Context, string, string) (*licensing.Item, error) { return nil, nil } // 204
	history := func(id string, a v1.DriftAction) []v1.DriftRecord {
		return []v1.DriftRecord{{ProductID: id, Expected: "Disabled", Found: "Enabled", DetectedAt: metav1.Time{Time: now.Add(-time.Hour)}, Action: a}}
	}
	cases := map[string]struct {
		reason  string
		mode    v1.Mode
		rules   []v1.ProductRule
		before  []v1.ProductStatus
		history []v1.DriftRecord
		tenant  []licensing.Item
		// write answers a PUT; nil applies every one.
		write writeFunc
		// writesAtOnce is WritesPerTenant (0: the default).
		writesAtOnce int

		wantEntries  []entry
		wantCounters v1.Counters
		wantDrift    []string
		wantEvents   []string
		wantWrites   []string
		// wantErr: "" (went on), "waiting" (stopped by a throttle), "retry"
		// (a product to retry soon) or the reason of the soft stall left for
		// the outcome.
		wantErr string
	}{
		"adoption": {
			reason: "the first sight of a tenant records adoption values, not drift, and sets what differs",
			mode:   v1.ModeEnforce,
			tenant: []licensing.Item{item("A", "Enabled"), item("B", "Disabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
				{ID: "B", Observed: "Disabled", Adopted: "Disabled"},
			},
			wantWrites: []string{"A=Disabled"},
		},
		"adoption in Observe": {
			reason:      "nothing is written, so the Adopted Event waits for the run's status write",
			mode:        v1.ModeObserve,
			tenant:      []licensing.Item{item("A", "Enabled")},
			write:       failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{{ID: "A", Observed: "Enabled", Adopted: "Enabled"}},
			wantEvents:  []string{"Normal Adopted: adopted 1 products of tenant t; 1 differed from the policy: A"},
		},
		"new product": {
			reason: "a product Microsoft adds after adoption is caught by default, announced, and has no adoption value",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Disabled"), item("N", "Enabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled"},
				{ID: "N", Observed: "Disabled", Pending: "Disabled", Corrections: 1},
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
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
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
			write:  failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 1},
			wantDrift:    []string{"A Disabled->Enabled Reported"},
			wantEvents:   []string{"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy"},
		},
		"throttle in the middle of the list": {
			reason:       "a 429 stops the writes not yet sent; status still records every product, and the drift not written is a failed correction",
			mode:         v1.ModeEnforce,
			writesAtOnce: 1,
			before:       []v1.ProductStatus{converged("A"), converged("B"), converged("C")},
			tenant:       []licensing.Item{item("A", "Enabled"), item("B", "Enabled"), item("C", "Enabled")},
			write:        failsOn("B", throttled("B")),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
				{ID: "B", Observed: "Enabled", Adopted: "Enabled"},
				{ID: "C", Observed: "Enabled", Adopted: "Enabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 3, DriftCorrected: 1},
			wantDrift:    []string{"C Disabled->Enabled CorrectionFailed", "B Disabled->Enabled CorrectionFailed", "A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy",
				"Warning DriftDetected: B (name of B) changed from Disabled to Enabled outside this policy",
				"Warning DriftDetected: C (name of C) changed from Disabled to Enabled outside this policy",
				"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled",
				"Warning WriteFailed: setting B (name of B) to Disabled failed: set product B: Throttled (HTTP 429); retry after 10s",
			},
			wantWrites: []string{"A=Disabled", "B=Disabled"},
			wantErr:    "waiting",
		},
		"rejected value": {
			reason: "Microsoft's 400 is recorded on the product and soft-stalls the run; the other products are still written",
			mode:   v1.ModeEnforce,
			rules:  []v1.ProductRule{{ProductID: "A", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
			before: []v1.ProductStatus{converged("A"), converged("B")},
			tenant: []licensing.Item{item("A", "Disabled"), item("B", "Enabled")},
			write:  failsOn("A", rejected),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Rejected: true},
				{ID: "B", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
			},
			wantCounters: v1.Counters{DriftDetected: 1, DriftCorrected: 1},
			wantDrift:    []string{"B Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: B (name of B) changed from Disabled to Enabled outside this policy",
				"Warning WriteFailed: setting A (name of A) to OnlyTrialsWithoutPaymentMethod failed: set product A: BadRequest (HTTP 400) BadRequest: Policy value not allowed for this product.",
				"Normal DriftCorrected: set B (name of B) back from Enabled to Disabled",
			},
			wantWrites: []string{"A=OnlyTrialsWithoutPaymentMethod", "B=Disabled"},
			wantErr:    v1.ReasonRejected,
		},
		"rejected value is not sent again": {
			reason: "a value Microsoft refused for this generation, less than a day ago, stays refused: no PUT, still a soft stall",
			mode:   v1.ModeEnforce,
			rules:  []v1.ProductRule{{ProductID: "A", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Rejected, ps.RejectedGeneration, ps.RejectedAt = "Policy value not allowed for this product.", gen, ago(23*time.Hour)
			})},
			tenant:      []licensing.Item{item("A", "Disabled")},
			write:       failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{{ID: "A", Observed: "Disabled", Adopted: "Enabled", Rejected: true}},
			wantErr:     v1.ReasonRejected,
		},
		"a rejection expires after a day": {
			reason: "Microsoft may accept the value later: a day after the rejection it is sent again",
			mode:   v1.ModeEnforce,
			rules:  []v1.ProductRule{{ProductID: "A", Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Rejected, ps.RejectedGeneration, ps.RejectedAt = "Policy value not allowed for this product.", gen, ago(24*time.Hour)
			})},
			tenant:      []licensing.Item{item("A", "Disabled")},
			wantEntries: []entry{{ID: "A", Observed: "OnlyTrialsWithoutPaymentMethod", Adopted: "Enabled", Pending: "OnlyTrialsWithoutPaymentMethod", Corrections: 1}},
			wantWrites:  []string{"A=OnlyTrialsWithoutPaymentMethod"},
		},
		"a new product answering 404": {
			reason: "replication lag: a product the list shows but Microsoft cannot write yet is retried soon, not rejected; the others are still written",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Enabled"), item("N", "Enabled")},
			write:  failsOn("N", lagging),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
				{ID: "N", Observed: "Enabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 1, DriftCorrected: 1, NewProducts: 1},
			wantDrift:    []string{"A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy",
				"Normal NewProductDetected: Microsoft added N (name of N) as Enabled; default sets it to Disabled",
				"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled",
				"Warning WriteFailed: setting N (name of N) to Disabled failed: set product N: NotFound (HTTP 404) Unknown: GetProductDetailsByProductIdAsync failed",
			},
			wantWrites: []string{"A=Disabled", "N=Disabled"},
			wantErr:    "retry",
		},
		"an accepted write answered with the old value": {
			reason: "Microsoft accepted but did not apply: no correction is counted, the drift stays a failed correction",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Enabled")},
			write:  answers("Enabled"),
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled", Unconfirmed: 1},
			},
			wantCounters: v1.Counters{DriftDetected: 1},
			wantDrift:    []string{"A Disabled->Enabled CorrectionFailed"},
			wantEvents:   []string{"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy"},
			wantWrites:   []string{"A=Disabled"},
		},
		"an accepted write without an answer": {
			reason: "no item in the answer: the write waits for the next list to count",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A")},
			tenant: []licensing.Item{item("A", "Enabled")},
			write:  silent,
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled", Pending: "Disabled"},
			},
			wantCounters: v1.Counters{DriftDetected: 1},
			wantDrift:    []string{"A Disabled->Enabled CorrectionPending"},
			wantEvents:   []string{"Warning DriftDetected: A (name of A) changed from Disabled to Enabled outside this policy"},
			wantWrites:   []string{"A=Disabled"},
		},
		"the next list confirms a pending write": {
			reason:  "the list shows the value written: now the correction counts, and nothing is written",
			mode:    v1.ModeEnforce,
			before:  []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) { ps.Observed, ps.PendingValue = "Enabled", "Disabled" })},
			history: history("A", v1.DriftCorrectionPending),
			tenant:  []licensing.Item{item("A", "Disabled")},
			write:   failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Corrections: 1},
			},
			wantCounters: v1.Counters{DriftCorrected: 1},
			wantDrift:    []string{"A Disabled->Enabled Corrected"},
			wantEvents:   []string{"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled"},
		},
		"the next list contradicts an answered write": {
			reason:  "Microsoft answered the value but the list shows the old one (not applied, a stale read, or a person): a transition, corrected again, and one unconfirmed write",
			mode:    v1.ModeEnforce,
			before:  []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) { ps.PendingValue, ps.Corrections = "Disabled", 1 })},
			history: history("A", v1.DriftCorrected),
			tenant:  []licensing.Item{item("A", "Enabled")},
			write:   answers("Disabled"),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 2, Unconfirmed: 1},
			},
			wantCounters: v1.Counters{DriftDetected: 1, DriftCorrected: 1},
			wantDrift:    []string{"A Disabled->Enabled Corrected", "A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled before a product list showed this policy's write (Microsoft did not apply it, or someone set it back)",
				"Normal DriftCorrected: set A (name of A) back from Enabled to Disabled",
			},
			wantWrites: []string{"A=Disabled"},
		},
		"a list right after a write does not count against it": {
			reason: "Microsoft's reads can show the old value for seconds after a write: within a minute the write is sent again, but not counted as unconfirmed",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Observed, ps.PendingValue, ps.UnconfirmedWrites, ps.LastWriteTime = "Enabled", "Disabled", 2, ago(10*time.Second)
			})},
			tenant:      []licensing.Item{item("A", "Enabled")},
			write:       silent,
			wantEntries: []entry{{ID: "A", Observed: "Enabled", Adopted: "Enabled", Pending: "Disabled", Unconfirmed: 2}},
			wantWrites:  []string{"A=Disabled"},
		},
		"the third write in a row that does not stay holds the value": {
			reason: "Microsoft answers every write with the value and never applies it: after 3, the drift is recorded once more, not corrected, and the controller says so",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.PendingValue, ps.Corrections, ps.UnconfirmedWrites, ps.LastWriteTime = "Disabled", 3, 2, ago(time.Hour)
			})},
			history: history("A", v1.DriftCorrected),
			tenant:  []licensing.Item{item("A", "Enabled")},
			write:   failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled", Corrections: 3, Unconfirmed: 3},
			},
			wantCounters: v1.Counters{DriftDetected: 1},
			wantDrift:    []string{"A Disabled->Enabled CorrectionFailed", "A Disabled->Enabled Corrected"},
			wantEvents: []string{
				"Warning WriteNotApplied: Microsoft accepted A (name of A) = Disabled 3 times in a row, but the tenant still shows Enabled; " +
					"not written again until the desired value changes, the tenant shows it, or 24h0m0s after the last write",
				"Warning DriftDetected: A (name of A) changed from Disabled to Enabled before a product list showed this policy's write (Microsoft did not apply it, or someone set it back)",
			},
			wantErr: v1.ReasonWriteNotApplied,
		},
		"the third unconfirmed write holds the value": {
			reason: "after 3 writes Microsoft accepted and the tenant never showed, the controller says so once and stops writing",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Observed, ps.PendingValue, ps.UnconfirmedWrites, ps.LastWriteTime = "Enabled", "Disabled", 2, ago(time.Hour)
			})},
			tenant: []licensing.Item{item("A", "Enabled")},
			write:  failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{
				{ID: "A", Observed: "Enabled", Adopted: "Enabled", Unconfirmed: 3},
			},
			wantEvents: []string{"Warning WriteNotApplied: Microsoft accepted A (name of A) = Disabled 3 times in a row, but the tenant still shows Enabled; " +
				"not written again until the desired value changes, the tenant shows it, or 24h0m0s after the last write"},
			wantErr: v1.ReasonWriteNotApplied,
		},
		"a held value is not written": {
			reason: "the hold lasts: no write, no Event again, still a soft stall",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Observed, ps.UnconfirmedWrites, ps.LastWriteTime = "Enabled", 3, ago(23*time.Hour)
			})},
			tenant:      []licensing.Item{item("A", "Enabled")},
			write:       failsOn("A", errUnexpectedWrite),
			wantEntries: []entry{{ID: "A", Observed: "Enabled", Adopted: "Enabled", Unconfirmed: 3}},
			wantErr:     v1.ReasonWriteNotApplied,
		},
		"a hold expires after a day": {
			reason: "a day after the last write the value is tried again",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{with(converged("A"), func(ps *v1.ProductStatus) {
				ps.Observed, ps.UnconfirmedWrites, ps.LastWriteTime = "Enabled", 3, ago(24*time.Hour)
			})},
			tenant:      []licensing.Item{item("A", "Enabled")},
			wantEntries: []entry{{ID: "A", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1}},
			wantWrites:  []string{"A=Disabled"},
		},
		"a product missing from one list": {
			reason: "absence from one answer is not deletion: the entry and its adoption value stay, nothing is written or counted",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A"), converged("B")},
			tenant: []licensing.Item{item("A", "Disabled")},
			write:  failsOn("B", errUnexpectedWrite),
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled"},
				{ID: "B", Observed: "Disabled", Adopted: "Enabled", Missing: true},
			},
			wantEvents: []string{"Normal ProductMissing: B (name of B) is missing from the product list; its entry is kept, and nothing written, until it returns"},
		},
		"a missing product returns": {
			reason: "back in the list it is neither new nor drift, even with another value; Enforce sets it again",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A"), with(converged("B"), func(ps *v1.ProductStatus) { ps.MissingSince, ps.MissingSyncs = ago(2*time.Hour), 5 })},
			tenant: []licensing.Item{item("A", "Disabled"), item("B", "Enabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled"},
				{ID: "B", Observed: "Disabled", Adopted: "Enabled", Pending: "Disabled", Corrections: 1},
			},
			wantWrites: []string{"B=Disabled"},
		},
		"a product missing for 3 syncs and an hour is removed": {
			reason: "a product Microsoft really removed leaves status, with an Event that says what Restore loses",
			mode:   v1.ModeEnforce,
			before: []v1.ProductStatus{converged("A"), with(converged("B"), func(ps *v1.ProductStatus) { ps.MissingSince, ps.MissingSyncs = ago(time.Hour), 2 })},
			tenant: []licensing.Item{item("A", "Disabled")},
			wantEntries: []entry{
				{ID: "A", Observed: "Disabled", Adopted: "Enabled"},
			},
			wantEvents: []string{"Normal ProductRemoved: B (name of B) has been missing from the product list since 2026-11-25T11:00:00Z (3 syncs): removed from status; Restore will not write back its adoption value Enabled"},
		},
		"a product missing for many syncs within the hour is kept": {
			reason:      "with a short interval, the hour decides",
			mode:        v1.ModeEnforce,
			before:      []v1.ProductStatus{converged("A"), with(converged("B"), func(ps *v1.ProductStatus) { ps.MissingSince, ps.MissingSyncs = ago(59*time.Minute), 9 })},
			tenant:      []licensing.Item{item("A", "Disabled")},
			wantEntries: []entry{{ID: "A", Observed: "Disabled", Adopted: "Enabled"}, {ID: "B", Observed: "Disabled", Adopted: "Enabled", Missing: true}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Generation: gen},
				Spec: v1.TenantPurchasePolicySpec{TenantID: "t", TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: tc.mode, Default: v1.RulePolicy(v1.PolicyDisabled), Products: tc.rules}}}
			p.Status.Products, p.Status.DriftHistory = tc.before, tc.history
			fc := newFakeCluster(t, nil, interceptor.Funcs{}, p)
			fc.r.WritesPerTenant = tc.writesAtOnce
			p = fc.get(p)
			var mu sync.Mutex
			var writes []string
			write := tc.write
			if write == nil {
				write = applies
			}
			fake := fakePolicies{setProduct: func(ctx context.Context, id, value string) (*licensing.Item, error) {
				mu.Lock()
				writes = append(writes, id+"="+value)
				mu.Unlock()
				return write(ctx, id, value)
			}}
			pl := plan.Compute(&p.Spec, tc.tenant, nil, now)
			s := &syncState{policy: p, base: p.DeepCopy(), now: now, policies: fake, plan: &pl}

			err := fc.r.act(context.Background(), s)

			var gotErr string
			if _, ok := asWait(err); ok {
				gotErr = "waiting"
			} else if err != nil {
				t.Fatalf("%s: act stopped with %v", tc.reason, err)
			}
			if gotErr == "" && s.retryErr != nil {
				gotErr = "retry"
			}
			if st, ok := asStalled(s.softErr); ok && gotErr == "" {
				gotErr = st.reason
			}
			var entries []entry
			for _, ps := range p.Status.Products {
				entries = append(entries, entry{ID: ps.ProductID, Observed: ps.Observed, Adopted: ps.AdoptedValue, Pending: ps.PendingValue,
					Corrections: ps.Corrections, Unconfirmed: ps.UnconfirmedWrites, Rejected: ps.Rejected != "", Missing: ps.MissingSince != nil})
			}
			var drift []string
			for _, d := range p.Status.DriftHistory {
				drift = append(drift, fmt.Sprintf("%s %s->%s %s", d.ProductID, d.Expected, d.Found, d.Action))
			}
			var events []string
			for _, e := range s.events {
				events = append(events, e.eventType+" "+e.reason+": "+e.note)
			}
			for _, a := range s.announcements {
				events = append(events, a.eventType+" "+a.reason+": "+a.note)
			}
			sort.Strings(writes)
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
