package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// family is one exported metric family.
type family struct {
	typ    dto.MetricType
	labels []string // sorted
}

// series are the names PromQL can select for the family: a histogram's
// _bucket, _sum and _count.
func (f family) series(name string) []string {
	switch f.typ {
	case dto.MetricType_HISTOGRAM:
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

var exported = sync.OnceValues(gatherExported)

// exportedMetrics returns every metric family the controller binary serves,
// each gathered from its real registry once the code that fills it has run:
// the controller's own metrics (controllers.NewMetrics, default labels), the
// outbound metrics (m365.TransportMetrics) and controller-runtime's
// (reconcile, work queue, leader election).
func exportedMetrics(t *testing.T) map[string]family {
	t.Helper()
	fams, err := exported()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// exportedSeries is every selectable series name.
func exportedSeries(t *testing.T) map[string]bool {
	out := map[string]bool{}
	for name, f := range exportedMetrics(t) {
		for _, s := range f.series(name) {
			out[s] = true
		}
	}
	return out
}

func gatherExported() (map[string]family, error) {
	own := prometheus.NewPedanticRegistry()
	controllers.NewMetrics(&touchingRegisterer{reg: own}, false)
	if err := exerciseControllerRuntime(); err != nil {
		return nil, err
	}
	out := map[string]family{}
	for _, g := range []prometheus.Gatherer{own, metrics.Registry} {
		fams, err := g.Gather()
		if err != nil {
			return nil, err
		}
		for _, f := range fams {
			out[f.GetName()] = family{typ: f.GetType(), labels: labelNames(f)}
		}
	}
	return out, nil
}

func labelNames(f *dto.MetricFamily) []string {
	var names []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !slices.Contains(names, l.GetName()) {
				names = append(names, l.GetName())
			}
		}
	}
	slices.Sort(names)
	return names
}

// touchingRegisterer registers collectors on reg and gives each vector one
// child, so that Gather shows it with its type and labels; the outbound
// metrics get real requests.
type touchingRegisterer struct{ reg *prometheus.Registry }

func (r *touchingRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	return touch(c)
}

func (r *touchingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *touchingRegisterer) Unregister(c prometheus.Collector) bool { return r.reg.Unregister(c) }

// touch creates one child of a vector, trying label counts until one fits.
func touch(c prometheus.Collector) error {
	if tm, ok := c.(*m365.TransportMetrics); ok {
		exerciseTransport(tm)
		return nil
	}
	for n := 0; n <= 8; n++ {
		values := slices.Repeat([]string{"x"}, n)
		var err error
		switch v := c.(type) {
		case *prometheus.CounterVec:
			_, err = v.GetMetricWithLabelValues(values...)
		case *prometheus.GaugeVec:
			_, err = v.GetMetricWithLabelValues(values...)
		case *prometheus.HistogramVec:
			_, err = v.GetMetricWithLabelValues(values...)
		default:
			return fmt.Errorf("exported_test: teach touch about %T", c)
		}
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("no label count fits %T", c)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// exerciseTransport sends a request Microsoft throttles and one the gate
// then holds back.
func exerciseTransport(tm *m365.TransportMetrics) {
	throttled := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"60"}},
			Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
	c := &http.Client{Transport: m365.NewGate(nil).Transport("tenant", tm.Transport(m365.APILicensing, throttled))}
	for range 2 {
		if resp, err := c.Get("https://licensing.example/v1.0/policies"); err == nil {
			resp.Body.Close()
		}
	}
}

// exerciseControllerRuntime runs one reconcile through a real controller and
// wins one leader election, which fill controller-runtime's reconcile, work
// queue and leader-election metrics.
func exerciseControllerRuntime() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reconciled := make(chan struct{}, 1)
	c, err := controller.NewUnmanaged("tenantpurchasepolicy", controller.Options{
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			reconciled <- struct{}{}
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		return err
	}
	events := make(chan event.GenericEvent, 1)
	if err := c.Watch(source.Channel(events, &handler.EnqueueRequestForObject{})); err != nil {
		return err
	}
	go func() { _ = c.Start(ctx) }()
	events <- event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n"}}}

	led := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &memoryLock{}, Name: "purchase-policy-controller.tenantpolicy.io",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: time.Second,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) { close(led) }, OnStoppedLeading: func() {}},
	})
	if err != nil {
		return err
	}
	go le.Run(ctx)
	for _, wait := range []<-chan struct{}{reconciled, led} {
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("controller-runtime exercise: %w", ctx.Err())
		}
	}
	// The reconcile's duration is recorded after Reconcile returns.
	for !gathered(metrics.Registry, "controller_runtime_reconcile_time_seconds") {
		select {
		case <-ctx.Done():
			return fmt.Errorf("no reconcile duration recorded: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func gathered(g prometheus.Gatherer, name string) bool {
	fams, _ := g.Gather()
	return slices.ContainsFunc(fams, func(f *dto.MetricFamily) bool { return f.GetName() == name })
}

// memoryLock is a leader-election lock held in memory.
type memoryLock struct {
	mu     sync.Mutex
	record []byte
}

func (l *memoryLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.record == nil {
		return nil, nil, apierrors.NewNotFound(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "lock")
	}
	var r resourcelock.LeaderElectionRecord
	err := json.Unmarshal(l.record, &r)
	return &r, l.record, err
}

func (l *memoryLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.Update(context.Background(), r)
}

func (l *memoryLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	b, err := json.Marshal(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.record = b
	return err
}

func (l *memoryLock) RecordEvent(string) {}
func (l *memoryLock) Identity() string   { return "ops-test" }
func (l *memoryLock) Describe() string   { return "memory/lock" }

// TestExportedMetricsIncludeWhatTheAlertsNeed guards the harness itself: if
// an exercise silently stopped filling a registry, every name check below
// would pass against a smaller set.
func TestExportedMetricsIncludeWhatTheAlertsNeed(t *testing.T) {
	fams := exportedMetrics(t)
	for _, name := range []string{
		"tpp_reconcile_outcomes_total", m365.MetricRequests, m365.MetricRetryAfter, m365.MetricThrottleWaits,
		"controller_runtime_reconcile_time_seconds", "workqueue_depth", "leader_election_master_status",
	} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s is not exported", name)
		}
	}
	if f := fams["controller_runtime_reconcile_time_seconds"]; f.typ != dto.MetricType_HISTOGRAM {
		t.Errorf("controller_runtime_reconcile_time_seconds is %v, want a histogram", f.typ)
	}
}
