package controllers

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

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
