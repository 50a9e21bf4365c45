package controllers

import (
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMetricsFollowStatusCounters(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), false)
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "m365"}}
	p.Status.Counters = v1.Counters{DriftDetected: 5, DriftCorrected: 4, Takeovers: 1}
	base := p.DeepCopy()
	p.Status.Counters = v1.Counters{DriftDetected: 7, DriftCorrected: 6, Takeovers: 1, Cancellations: 1}
	p.Status.Summary = v1.Summary{Drifted: 2, SelfServiceSubscriptions: 3}

	s := &syncState{policy: p, base: base}
	m.observe(s, computeOutcome(s))

	cases := map[string]struct {
		got, want float64
	}{
		"drift detected grows by this run's transitions only": {testutil.ToFloat64(m.drift.WithLabelValues("m365")), 2},
		"drift corrected likewise":                            {testutil.ToFloat64(m.corrected.WithLabelValues("m365")), 2},
		"a cancellation is a handover":                        {testutil.ToFloat64(m.handovers.WithLabelValues("m365", string(v1.VerdictCancelled))), 1},
		"no new takeover, no increment":                       {testutil.ToFloat64(m.handovers.WithLabelValues("m365", string(v1.VerdictTakenOver))), 0},
		"drifted products gauge":                              {testutil.ToFloat64(m.driftedGauge.WithLabelValues("m365", "contoso")), 2},
		"self-service gauge":                                  {testutil.ToFloat64(m.selfService.WithLabelValues("m365", "contoso")), 3},
		"one ready outcome":                                   {testutil.ToFloat64(m.reconciles.WithLabelValues("m365", "ready")), 1},
	}
	for name, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", name, tc.got, tc.want)
		}
	}
}

func TestMetricsTenantLabelIsOptIn(t *testing.T) {
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "m365"}, Spec: v1.TenantPurchasePolicySpec{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}}
	if got := (&Metrics{}).labels(p); len(got) != 1 {
		t.Errorf("without the flag the tenant ID must not be a label (cardinality), got %v", got)
	}
	if got := (&Metrics{tenantLabel: true}).labels(p); len(got) != 2 || got[1] != p.Spec.TenantID {
		t.Errorf("with the flag the tenant ID is a label, got %v", got)
	}
}

func TestMetricsConditionsFollowStatusAndMode(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, false)
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "fabrikam", Namespace: "m365"}, Spec: v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeObserve}}}
	p.Status.Conditions = []metav1.Condition{
		{Type: v1.ReadyCondition, Status: metav1.ConditionTrue},
		{Type: v1.DriftedCondition, Status: metav1.ConditionTrue},
		{Type: v1.ConflictCondition, Status: metav1.ConditionFalse},
	}
	s := &syncState{policy: p, base: p.DeepCopy()}
	m.observe(s, computeOutcome(s))
	want := map[string]float64{"Ready/Observe": 1, "Drifted/Observe": 1}
	if got := conditionSeries(t, reg); !maps.Equal(got, want) {
		t.Errorf("series %v, want %v: 1 for each True condition, none for a False (Conflict) or absent one but Ready", got, want)
	}

	p.Spec.Mode = v1.ModeEnforce
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: v1.DriftedCondition, Status: metav1.ConditionFalse})
	m.observe(s, computeOutcome(s))
	want = map[string]float64{"Ready/Enforce": 1}
	if got := conditionSeries(t, reg); !maps.Equal(got, want) {
		t.Errorf("after switching to Enforce and Drifted turning False: series %v, want %v", got, want)
	}
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{Type: v1.ReadyCondition, Status: metav1.ConditionFalse})
	m.observe(s, computeOutcome(s))
	want = map[string]float64{"Ready/Enforce": 0}
	if got := conditionSeries(t, reg); !maps.Equal(got, want) {
		t.Errorf("a policy not Ready: series %v, want %v (Ready is always exported, so dashboards count not-Ready policies)", got, want)
	}
	m.forget(p)
	if got := conditionSeries(t, reg); len(got) != 0 {
		t.Errorf("a deleted policy leaves condition series %v", got)
	}
}

// conditionSeries gathers tpp_policy_condition as "type/mode" -> value.
func conditionSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "tpp_policy_condition" {
			continue
		}
		for _, s := range f.GetMetric() {
			l := map[string]string{}
			for _, pair := range s.GetLabel() {
				l[pair.GetName()] = pair.GetValue()
			}
			out[l["type"]+"/"+l["mode"]] = s.GetGauge().GetValue()
		}
	}
	return out
}

func TestMetricsRefundDeadlineIsTheSoonestRefundableOne(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	paid := func(id string, until *metav1.Time) v1.SelfServiceSubscription {
		return v1.SelfServiceSubscription{ID: id, Status: "Enabled", FullRefundUntil: until}
	}
	trial, suspended, passed := paid("trial", at(time.Hour)), paid("suspended", at(time.Hour)), paid("passed", at(-time.Hour))
	trial.Trial, suspended.Status = true, "Suspended"
	cases := map[string]struct {
		subs []v1.SelfServiceSubscription
		want *metav1.Time // nil: no series
	}{
		"the soonest of two paid ones":            {[]v1.SelfServiceSubscription{paid("a", at(20*time.Hour)), paid("b", at(3*time.Hour))}, at(3 * time.Hour)},
		"a trial has nothing to refund":           {[]v1.SelfServiceSubscription{trial, paid("a", at(20*time.Hour))}, at(20 * time.Hour)},
		"a deadline that passed no longer counts": {[]v1.SelfServiceSubscription{passed, paid("a", at(20*time.Hour))}, at(20 * time.Hour)},
		"nothing refundable: absent":              {[]v1.SelfServiceSubscription{trial, suspended, passed}, nil},
		"no subscriptions: absent":                {nil, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry(), false)
			p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "m365"}}
			p.Spec.Subscriptions.RefundWarning = &metav1.Duration{Duration: 2 * time.Hour}
			p.Status.Subscriptions = &v1.SubscriptionsStatus{SelfService: tc.subs}
			s := &syncState{policy: p, base: p.DeepCopy(), now: now}
			m.observe(s, computeOutcome(s))
			if tc.want == nil {
				if n := testutil.CollectAndCount(m.refundDeadline) + testutil.CollectAndCount(m.refundWarning); n != 0 {
					t.Errorf("%d refund series, want none", n)
				}
				return
			}
			if got := testutil.ToFloat64(m.refundDeadline.WithLabelValues("m365", "contoso")); got != float64(tc.want.Unix()) {
				t.Errorf("deadline %v, want %v", time.Unix(int64(got), 0).UTC(), tc.want.UTC())
			}
			if got := testutil.ToFloat64(m.refundWarning.WithLabelValues("m365", "contoso")); got != 7200 {
				t.Errorf("refund warning %v s, want 7200", got)
			}
		})
	}
}

func TestMetricsCountPurchasesFromZero(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry(), false)
	p := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: "contoso", Namespace: "m365"}}
	s := &syncState{policy: p, base: p.DeepCopy()}
	m.observe(s, computeOutcome(s))
	// The series exists at 0 before the first purchase, so increase() in
	// the SelfServicePurchaseDetected alert sees the first one.
	if n := testutil.CollectAndCount(m.purchases); n != 1 || testutil.ToFloat64(m.purchases.WithLabelValues("m365")) != 0 {
		t.Fatalf("before any purchase: %d series, want one at 0", n)
	}
	s.purchases = 2
	m.observe(s, computeOutcome(s))
	if got := testutil.ToFloat64(m.purchases.WithLabelValues("m365")); got != 2 {
		t.Errorf("purchases = %v, want 2", got)
	}
}

func TestMetricsRegisterTheTransportMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, false)
	c := m.Transport().Client(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})}, m365.APIGraph)
	resp, err := c.Get("https://graph.example/v1.0/subscribedSkus")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n, err := testutil.GatherAndCount(reg, m365.MetricRequests); err != nil || n != 1 {
		t.Errorf("%s on the registry: %d series (%v), want 1", m365.MetricRequests, n, err)
	}
	var none *Metrics
	if none.Transport() != nil {
		t.Error("a nil *Metrics must have no transport metrics")
	}
}
