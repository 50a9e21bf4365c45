package m365

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// API names a Microsoft service in the outbound metrics' api label.
type API string

// The Microsoft services the controller calls.
const (
	APILicensing API = "licensing"
	APIGraph     API = "graph"
	APIAuthority API = "authority"
)

// Values of the code label for round trips that got no HTTP status.
const (
	CodeTimeout  = "timeout"
	CodeCanceled = "canceled"
	CodeError    = "error"
)

// Outbound metric names.
const (
	MetricRequests        = "tpp_microsoft_requests_total"
	MetricRequestDuration = "tpp_microsoft_request_duration_seconds"
	MetricThrottleWaits   = "tpp_microsoft_throttle_waits_total"
	MetricRetryAfter      = "tpp_microsoft_retry_after_seconds"
)

// TransportMetrics counts and times every request to Microsoft. It is a
// prometheus.Collector: register it once, then wrap each client's base
// transport with Transport. Every label is bounded: api is one of three
// values, method one of the HTTP methods (or "other"), code an HTTP status or
// one of CodeTimeout, CodeCanceled, CodeError. A nil *TransportMetrics
// records nothing.
type TransportMetrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	throttleWaits *prometheus.CounterVec
	retryAfter    *prometheus.HistogramVec
}

// NewTransportMetrics returns unregistered outbound metrics.
func NewTransportMetrics() *TransportMetrics {
	return &TransportMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests,
			Help: "Requests sent to Microsoft by API, HTTP method and HTTP status (or timeout, canceled, error when no answer came)."},
			[]string{"api", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRequestDuration,
			Help:    "Time from sending a request to Microsoft to its response headers (or failure).",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}},
			[]string{"api", "method"}),
		throttleWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricThrottleWaits,
			Help: "Requests the not-before gate held back because Microsoft had asked the tenant to wait (Retry-After)."},
			[]string{"api"}),
		retryAfter: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRetryAfter,
			Help:    "Waits Microsoft asked for in 429 (and 503 with Retry-After) answers, in seconds.",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 900, 3600}},
			[]string{"api"}),
	}
}

func (m *TransportMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.duration, m.throttleWaits, m.retryAfter}
}

// Describe implements prometheus.Collector.
func (m *TransportMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *TransportMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Client returns a copy of hc whose transport is instrumented for api. hc may
// be nil (http.DefaultTransport); on a nil *TransportMetrics it returns hc.
func (m *TransportMetrics) Client(hc *http.Client, api API) *http.Client {
	if m == nil {
		return hc
	}
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.Transport = m.Transport(api, c.Transport)
	return &c
}

// Transport returns base (nil: http.DefaultTransport) instrumented for api.
// Put it under the not-before gate (as the clients' base transport): then it
// times what really goes out, and the gate reports what it held back.
func (m *TransportMetrics) Transport(api API, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &instrumentedTransport{m: m, api: string(api), base: base}
}

type instrumentedTransport struct {
	m    *TransportMetrics
	api  string
	base http.RoundTripper
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := methodLabel(req.Method)
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	t.m.duration.WithLabelValues(t.api, method).Observe(time.Since(start).Seconds())
	t.m.requests.WithLabelValues(t.api, method, codeLabel(resp, err)).Inc()
	if err == nil {
		if d, ok := throttleWait(resp, time.Now()); ok {
			t.m.retryAfter.WithLabelValues(t.api).Observe(d.Seconds())
		}
	}
	return resp, err
}

// heldBack is called by the gate for a request it did not let through.
func (t *instrumentedTransport) heldBack() {
	t.m.throttleWaits.WithLabelValues(t.api).Inc()
}

// holdObserver is a base transport that wants to know about the requests the
// gate held back (the instrumented transport).
type holdObserver interface{ heldBack() }

func methodLabel(m string) string {
	switch m {
	case "":
		return http.MethodGet
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead:
		return m
	}
	return "other"
}

func codeLabel(resp *http.Response, err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return strconv.Itoa(resp.StatusCode)
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return CodeTimeout
	}
	return CodeError
}
