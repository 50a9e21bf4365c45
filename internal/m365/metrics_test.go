package m365

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// samples gathers reg into "name{label=value,...}" → value; a histogram
// gives its _count and _sum.
func samples(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			key := "{" + strings.Join(l, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[f.GetName()+key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[f.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+key] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func answer(status int, retryAfter string) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestTransportMetricsCountTimeAndThrottle(t *testing.T) {
	m := NewTransportMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	g := NewGate(nil)
	var next http.RoundTripper = answer(200, "")
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return next.RoundTrip(r) })
	lic := &http.Client{Transport: g.Transport("tenant-a", m.Transport(APILicensing, base))}
	graph := m.Client(&http.Client{Transport: base}, APIGraph)
	do := func(c *http.Client, method string) error {
		req, _ := http.NewRequest(method, "https://licensing.example/v1.0/policies", nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	_ = do(lic, http.MethodGet)
	next = answer(429, "120")
	_ = do(lic, http.MethodPut)
	next = answer(200, "")
	if err := do(lic, http.MethodGet); KindOf(err) != Throttled {
		t.Fatalf("the gate must hold the request after a 429, got %v", err)
	}
	next = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, timeoutError{} })
	_ = do(graph, http.MethodGet)
	next = roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
	_ = do(graph, "PROPFIND")
	next = roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, context.Canceled })
	_ = do(graph, http.MethodPost)

	want := map[string]float64{
		`tpp_microsoft_requests_total{api=licensing,code=200,method=GET}`:        1,
		`tpp_microsoft_requests_total{api=licensing,code=429,method=PUT}`:        1,
		`tpp_microsoft_requests_total{api=graph,code=timeout,method=GET}`:        1,
		`tpp_microsoft_requests_total{api=graph,code=error,method=other}`:        1,
		`tpp_microsoft_requests_total{api=graph,code=canceled,method=POST}`:      1,
		`tpp_microsoft_request_duration_seconds_count{api=licensing,method=GET}`: 1,
		`tpp_microsoft_request_duration_seconds_count{api=licensing,method=PUT}`: 1,
		`tpp_microsoft_request_duration_seconds_count{api=graph,method=GET}`:     1,
		`tpp_microsoft_request_duration_seconds_count{api=graph,method=other}`:   1,
		`tpp_microsoft_request_duration_seconds_count{api=graph,method=POST}`:    1,
		`tpp_microsoft_throttle_waits_total{api=licensing}`:                      1,
		`tpp_microsoft_retry_after_seconds_count{api=licensing}`:                 1,
		`tpp_microsoft_retry_after_seconds_sum{api=licensing}`:                   120,
	}
	got := samples(t, reg)
	for k := range got {
		if strings.Contains(k, "duration_seconds_sum") {
			delete(got, k) // wall-clock time
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}

func TestTransportMetricsOnlyAsksForWaitsMicrosoftSet(t *testing.T) {
	m := NewTransportMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	for _, tc := range []struct {
		status     int
		retryAfter string
	}{{503, ""}, {500, "5"}, {503, "7"}, {429, ""}} {
		c := m.Client(&http.Client{Transport: answer(tc.status, tc.retryAfter)}, APIAuthority)
		resp, err := c.Post("https://login.example/t/oauth2/v2.0/token", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := samples(t, reg)
	// 503 with Retry-After (7 s) and 429 without (the default wait); a 503
	// without and a 500 with are not throttling.
	if got[`tpp_microsoft_retry_after_seconds_count{api=authority}`] != 2 ||
		got[`tpp_microsoft_retry_after_seconds_sum{api=authority}`] != 7+DefaultRetryAfter.Seconds() {
		t.Errorf("retry-after histogram: %v", got)
	}
}

func TestNilTransportMetricsLeaveTheClientAlone(t *testing.T) {
	var m *TransportMetrics
	hc := &http.Client{Timeout: time.Second}
	if m.Client(hc, APIGraph) != hc {
		t.Error("a nil *TransportMetrics must return the client unchanged")
	}
}
