package controllers

import (
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Metrics are the controller's Prometheus metrics. Labels carry the policy's
// namespace; the tenant ID is added only when TenantLabel is on (small
// fleets), to bound cardinality. A nil *Metrics records nothing.
type Metrics struct {
	tenantLabel  bool
	reconciles   *prometheus.CounterVec
	drift        *prometheus.CounterVec
	corrected    *prometheus.CounterVec
	writes       *prometheus.CounterVec
	newProducts  *prometheus.CounterVec
	handovers    *prometheus.CounterVec
	selfService  *prometheus.GaugeVec
	driftedGauge *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer, tenantLabel bool) *Metrics {
	labels := []string{"namespace"}
	if tenantLabel {
		labels = append(labels, "tenant")
	}
	with := func(extra ...string) []string { return append(append([]string{}, labels...), extra...) }
	m := &Metrics{
		tenantLabel: tenantLabel,
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_reconcile_outcomes_total",
			Help: "Reconciles of TenantPurchasePolicies by outcome (ready, stalled, throttled, waiting, transient, suspended, deleting)."}, with("outcome")),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_drift_detected_total",
			Help: "Products found changed outside the policy."}, with()),
		corrected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_drift_corrected_total",
			Help: "Drifted products set back by the controller."}, with()),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_policy_writes_total",
			Help: "Writes to the licensing API by result (ok or the error kind)."}, with("result")),
		newProducts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_new_products_total",
			Help: "Products Microsoft added after a policy adopted its tenant."}, with()),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_self_service_handovers_total",
			Help: "Self-service subscriptions taken over, cancelled or expired."}, with("verdict")),
		selfService: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_self_service_subscriptions",
			Help: "Active self-service subscriptions per policy."}, with("policy")),
		driftedGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_drifted_products",
			Help: "Managed products that differ from the policy after the last sync."}, with("policy")),
	}
	reg.MustRegister(m.reconciles, m.drift, m.corrected, m.writes, m.newProducts, m.handovers, m.selfService, m.driftedGauge)
	return m
}

func (m *Metrics) labels(p *v1.TenantPurchasePolicy, extra ...string) []string {
	l := []string{p.Namespace}
	if m.tenantLabel {
		l = append(l, p.Spec.TenantID)
	}
	return append(l, extra...)
}

// observe records the outcome of a run whose status was written, and the
// growth of its lifetime counters, so metrics follow status exactly. A policy
// whose finalizer was released leaves its gauges.
func (m *Metrics) observe(s *syncState, o outcome) {
	if m == nil {
		return
	}
	p := s.policy
	m.reconciles.WithLabelValues(m.labels(p, outcomeLabel(o))...).Inc()
	if o.releasesFinalizer() {
		m.forget(p)
	} else {
		m.selfService.WithLabelValues(m.labels(p, p.Name)...).Set(float64(p.Status.Summary.SelfServiceSubscriptions))
		m.driftedGauge.WithLabelValues(m.labels(p, p.Name)...).Set(float64(p.Status.Summary.Drifted))
	}
	was, now := s.base.Status.Counters, p.Status.Counters
	add := func(c *prometheus.CounterVec, delta int64, extra ...string) {
		if delta > 0 {
			c.WithLabelValues(m.labels(p, extra...)...).Add(float64(delta))
		}
	}
	add(m.drift, now.DriftDetected-was.DriftDetected)
	add(m.corrected, now.DriftCorrected-was.DriftCorrected)
	add(m.newProducts, now.NewProducts-was.NewProducts)
	add(m.handovers, now.Takeovers-was.Takeovers, string(v1.VerdictTakenOver))
	add(m.handovers, now.Cancellations-was.Cancellations, string(v1.VerdictCancelled))
	add(m.handovers, now.Expiries-was.Expiries, string(v1.VerdictExpired))
}

// outcomeLabel names the outcome for tpp_reconcile_outcomes_total: ready,
// stalled, throttled (Microsoft's Retry-After), waiting (the controller's own
// wait), transient, suspended, or deleting (every run of a policy being
// deleted).
func outcomeLabel(o outcome) string {
	switch {
	case o.deleting:
		return "deleting"
	case o.kind == outcomeSucceeded:
		return "ready"
	case o.kind == outcomeWaiting && o.reason == v1.ReasonThrottled:
		return "throttled"
	}
	return string(o.kind)
}

func (m *Metrics) forget(p *v1.TenantPurchasePolicy) {
	if m == nil {
		return
	}
	m.selfService.DeleteLabelValues(m.labels(p, p.Name)...)
	m.driftedGauge.DeleteLabelValues(m.labels(p, p.Name)...)
}

func (m *Metrics) write(p *v1.TenantPurchasePolicy, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = string(m365.KindOf(err))
		if result == "" {
			result = "error"
		}
	}
	m.writes.WithLabelValues(m.labels(p, result)...).Inc()
}
