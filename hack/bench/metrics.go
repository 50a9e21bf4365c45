package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics the harness reads from the controller's /metrics.
const (
	metricReconciles = "controller_runtime_reconcile_total"
	metricHeap       = "go_memstats_heap_alloc_bytes"
	metricGoroutines = "go_goroutines"
)

const scrapeTimeout = 10 * time.Second

// scraper reads the controller's metrics endpoint as Prometheus would: over
// HTTPS with a ServiceAccount token the controller checks with a
// TokenReview and a SubjectAccessReview.
type scraper struct {
	url   string
	token string
	http  *http.Client
}

// newScraper scrapes addr (host:port); secure is --metrics-secure.
func newScraper(addr, token string, secure bool) *scraper {
	scheme := "http"
	if secure {
		scheme = "https"
	}
	return &scraper{url: scheme + "://" + addr + "/metrics", token: token, http: &http.Client{
		Timeout: scrapeTimeout,
		// The controller serves a self-signed certificate it made at start.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // local, self-signed
	}}
}

// sample is one scrape's values of the metrics the harness reads.
type sample struct {
	Reconciles float64 `json:"reconciles"`
	HeapBytes  float64 `json:"heapAllocBytes"`
	Goroutines float64 `json:"goroutines"`
}

// scrape reads the metrics once.
func (s *scraper) scrape(ctx context.Context) (sample, error) {
	var out sample
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return out, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.http.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return out, fmt.Errorf("parsing %s: %w", s.url, err)
	}
	out.Reconciles = sum(families[metricReconciles])
	out.HeapBytes = sum(families[metricHeap])
	out.Goroutines = sum(families[metricGoroutines])
	return out, nil
}

// sum adds up every series of a counter or gauge family.
func sum(f *dto.MetricFamily) float64 {
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}
