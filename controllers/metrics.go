package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// Metrics are the controller's Prometheus metrics. Labels carry the policy's
// namespace; the tenant ID is added only when TenantLabel is on (small
// fleets), to bound cardinality. A nil *Metrics records nothing.
type Metrics struct {
	tenantLabel    bool
	reconciles     *prometheus.CounterVec
	drift          *prometheus.CounterVec
	corrected      *prometheus.CounterVec
	writes         *prometheus.CounterVec
	settingsWrites *prometheus.CounterVec
	newProducts    *prometheus.CounterVec
	handovers      *prometheus.CounterVec
	purchases      *prometheus.CounterVec
	selfService    *prometheus.GaugeVec
	driftedGauge   *prometheus.GaugeVec
	conditions     *prometheus.GaugeVec
	refundDeadline *prometheus.GaugeVec
	refundWarning  *prometheus.GaugeVec
	// transport counts and times the calls to Microsoft (NewReconciler
	// instruments every client with it).
	transport *m365.TransportMetrics
}

// metricConditions are the condition types tpp_policy_condition exports.
var metricConditions = []string{v1.ReadyCondition, v1.ReconcilingCondition, v1.StalledCondition, v1.DriftedCondition, v1.ConflictCondition, v1.TenantSettingsDegradedCondition}

// metricModes are the values of tpp_policy_condition's mode label.
var metricModes = []v1.Mode{v1.ModeEnforce, v1.ModeObserve}

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
			Help: "Products and tenant settings found changed outside the policy."}, with()),
		corrected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_drift_corrected_total",
			Help: "Drifted products and tenant settings set back by the controller."}, with()),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_policy_writes_total",
			Help: "Writes to the licensing API by result (ok or the error kind)."}, with("result")),
		settingsWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_tenant_settings_writes_total",
			Help: "PATCHes of a tenant settings resource (authorizationPolicy, appsAndServices) by result (ok or the error kind)."}, with("resource", "result")),
		newProducts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_new_products_total",
			Help: "Products Microsoft added after a policy adopted its tenant."}, with()),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_self_service_handovers_total",
			Help: "Self-service subscriptions taken over, cancelled or expired."}, with("verdict")),
		selfService: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_self_service_subscriptions",
			Help: "Active self-service subscriptions per policy."}, with("policy")),
		driftedGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_drifted_products",
			Help: "Managed products that differ from the policy after the last sync."}, with("policy")),
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tpp_self_service_purchases_total",
			Help: "New self-service subscriptions detected."}, with()),
		conditions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_policy_condition",
			Help: "1 while the policy's condition type (Ready, Reconciling, Stalled, Drifted, Conflict, TenantSettingsDegraded) is True, else 0 for Ready and no series for the others."}, with("policy", "type", "mode")),
		refundDeadline: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_full_refund_deadline_timestamp_seconds",
			Help: "Soonest future full-refund deadline (Unix time) of an active paid self-service subscription; absent when none."}, with("policy")),
		refundWarning: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tpp_refund_warning_seconds",
			Help: "The policy's subscriptions.refundWarning, exported next to its full-refund deadline."}, with("policy")),
		transport: m365.NewTransportMetrics(),
	}
	reg.MustRegister(m.reconciles, m.drift, m.corrected, m.writes, m.settingsWrites, m.newProducts, m.handovers, m.purchases,
		m.selfService, m.driftedGauge, m.conditions, m.refundDeadline, m.refundWarning, m.transport)
	return m
}

// Transport returns the outbound metrics (nil on a nil *Metrics).
func (m *Metrics) Transport() *m365.TransportMetrics {
	if m == nil {
		return nil
	}
	return m.transport
}

func (m *Metrics) labels(p *v1.TenantPurchasePolicy, extra ...string) []string {
	l := []string{p.Namespace}
	if m.tenantLabel {
		l = append(l, tenantKey(p))
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
		m.observeConditions(p)
		m.observeRefundDeadline(p, s.now)
	}
	// Every counter is created at 0 with the policy's first run, so that
	// increase() sees the first purchase or takeover as one.
	was, now := s.base.Status.Counters, p.Status.Counters
	add := func(c *prometheus.CounterVec, delta int64, extra ...string) {
		c.WithLabelValues(m.labels(p, extra...)...).Add(float64(max(delta, 0)))
	}
	add(m.drift, now.DriftDetected-was.DriftDetected)
	add(m.corrected, now.DriftCorrected-was.DriftCorrected)
	add(m.newProducts, now.NewProducts-was.NewProducts)
	add(m.handovers, now.Takeovers-was.Takeovers, string(v1.VerdictTakenOver))
	add(m.handovers, now.Cancellations-was.Cancellations, string(v1.VerdictCancelled))
	add(m.handovers, now.Expiries-was.Expiries, string(v1.VerdictExpired))
	add(m.purchases, int64(s.purchases))
}

// observeConditions exports tpp_policy_condition for the policy's mode:
// Ready always (1 or 0), every other type only while True (1), and no
// series of the other mode (a policy that switched). A healthy fleet of
// 10,000 then keeps one series per policy, not six, which at that size
// is tens of MiB of the controller's heap (make bench).
func (m *Metrics) observeConditions(p *v1.TenantPurchasePolicy) {
	mode := p.Spec.Mode
	if mode == "" {
		mode = v1.ModeEnforce
	}
	for _, t := range metricConditions {
		for _, each := range metricModes {
			l := m.labels(p, p.Name, t, string(each))
			switch on := meta.IsStatusConditionTrue(p.Status.Conditions, t); {
			case each != mode, !on && t != v1.ReadyCondition:
				m.conditions.DeleteLabelValues(l...)
			case on:
				m.conditions.WithLabelValues(l...).Set(1)
			default:
				m.conditions.WithLabelValues(l...).Set(0)
			}
		}
	}
}

// observeRefundDeadline exports the soonest future full-refund deadline and
// the policy's refund warning, or removes both when there is none.
func (m *Metrics) observeRefundDeadline(p *v1.TenantPurchasePolicy, now time.Time) {
	l := m.labels(p, p.Name)
	var subs []v1.SelfServiceSubscription
	if p.Status.Subscriptions != nil {
		subs = p.Status.Subscriptions.SelfService
	}
	deadline, ok := soonestFullRefund(subs, now)
	if !ok {
		m.refundDeadline.DeleteLabelValues(l...)
		m.refundWarning.DeleteLabelValues(l...)
		return
	}
	m.refundDeadline.WithLabelValues(l...).Set(float64(deadline.Unix()))
	warning := time.Duration(0)
	if w := p.Spec.Subscriptions.RefundWarning; w != nil {
		warning = w.Duration
	}
	m.refundWarning.WithLabelValues(l...).Set(warning.Seconds())
}

// soonestFullRefund is the earliest full-refund deadline after now of the
// subscriptions that can still be refunded in full.
func soonestFullRefund(subs []v1.SelfServiceSubscription, now time.Time) (time.Time, bool) {
	var soonest time.Time
	for i := range subs {
		e := &subs[i]
		if !refundable(e) || !e.FullRefundUntil.After(now) {
			continue
		}
		if soonest.IsZero() || e.FullRefundUntil.Time.Before(soonest) {
			soonest = e.FullRefundUntil.Time
		}
	}
	return soonest, !soonest.IsZero()
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
	m.refundDeadline.DeleteLabelValues(m.labels(p, p.Name)...)
	m.refundWarning.DeleteLabelValues(m.labels(p, p.Name)...)
	policy := prometheus.Labels{"namespace": p.Namespace, "policy": p.Name}
	m.conditions.DeletePartialMatch(policy)
}

// writeResult is a write's result label: ok, the typed error's kind, or error.
func writeResult(err error) string {
	if err == nil {
		return "ok"
	}
	if kind := string(m365.KindOf(err)); kind != "" {
		return kind
	}
	return "error"
}

func (m *Metrics) write(p *v1.TenantPurchasePolicy, err error) {
	if m == nil {
		return
	}
	m.writes.WithLabelValues(m.labels(p, writeResult(err))...).Inc()
}

// settingsWrite counts one PATCH of a tenant settings resource.
func (m *Metrics) settingsWrite(p *v1.TenantPurchasePolicy, resource v1.SettingsResource, err error) {
	if m == nil {
		return
	}
	m.settingsWrites.WithLabelValues(m.labels(p, string(resource), writeResult(err))...).Inc()
}
