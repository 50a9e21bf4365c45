package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// What the demo prints about its Prometheus in the "try it" text.
var (
	prometheusURL = regexp.MustCompile(`(?m)^Prometheus: (http://\S+) `)
	metricsURL    = regexp.MustCompile(`(?m)^controller metrics: (https://\S+)$`)
)

// monitoringTimeout bounds the checks of what Prometheus scraped.
const monitoringTimeout = time.Minute

// prometheusBinary finds Debian's prometheus or fails with what to install.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	p, err := testsupport.PrometheusTool("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkMonitoring checks what the demo's Prometheus scraped from the
// controller's secure metrics endpoint after the walk-through: every metric
// the README documents has a non-zero sample, the self-service purchase
// alert is raised, and the endpoint refuses scrapers without the right.
func checkMonitoring(t *testing.T, ctx context.Context, output, dir string) {
	promURL, target := submatch(t, prometheusURL, output), submatch(t, metricsURL, output)
	c, err := promapi.NewClient(promapi.Config{Address: promURL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(c)
	ctx, cancel := context.WithTimeout(ctx, monitoringTimeout)
	defer cancel()

	t.Run("every documented metric has a non-zero sample", func(t *testing.T) {
		docs, err := testsupport.ReadmeMetrics(filepath.Join(bins.Root, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range docs {
			series := m.Name
			if m.Type == "histogram" {
				series += "_count"
			}
			query := fmt.Sprintf(`max(max_over_time(%s[1h])) > 0`, series)
			if err := eventually(ctx, func() error { return nonEmpty(ctx, api, query) }); err != nil {
				t.Errorf("%s: %v", m.Name, err)
			}
		}
	})
	t.Run("the self-service purchase alert is raised", func(t *testing.T) {
		err := eventually(ctx, func() error { return alertActive(ctx, api, "SelfServicePurchaseDetected") })
		if err != nil {
			t.Error(err)
		}
		if err := alertActive(ctx, api, "PurchasePolicyControllerAbsent"); err == nil {
			t.Error("PurchasePolicyControllerAbsent is raised while Prometheus scrapes the controller")
		}
	})
	t.Run("the metrics endpoint authenticates and authorizes", func(t *testing.T) {
		checkMetricsAuth(t, ctx, dir, target)
	})
}

func submatch(t *testing.T, re *regexp.Regexp, s string) string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("the demo did not print %s", re)
	}
	return m[1]
}

// eventually retries f every half second until it succeeds or ctx ends.
func eventually(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func nonEmpty(ctx context.Context, api promv1.API, query string) error {
	v, _, err := api.Query(ctx, query, time.Now())
	if err != nil {
		return err
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) == 0 {
		return fmt.Errorf("%s: no sample", query)
	}
	return nil
}

func alertActive(ctx context.Context, api promv1.API, name string) error {
	res, err := api.Alerts(ctx)
	if err != nil {
		return err
	}
	for _, a := range res.Alerts {
		if string(a.Labels[model.AlertNameLabel]) == name && (a.State == promv1.AlertStatePending || a.State == promv1.AlertStateFiring) {
			return nil
		}
	}
	return fmt.Errorf("alert %s is neither pending nor firing (active: %v)", name, res.Alerts)
}

// checkMetricsAuth scrapes the endpoint itself: no token is 401, the token
// of a ServiceAccount without the metrics-reader role is 403, Prometheus'
// token is 200.
func checkMetricsAuth(t *testing.T, ctx context.Context, dir, target string) {
	kube := kubeClient(t, filepath.Join(dir, "kubeconfig"))
	outsider := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "not-a-scraper", Namespace: "m365"}}
	if err := kube.Create(ctx, outsider); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := kube.SubResource("token").Create(ctx, outsider, tr); err != nil {
		t.Fatal(err)
	}
	scraper, err := os.ReadFile(filepath.Join(dir, "prometheus-token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who   string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a ServiceAccount without the metrics-reader role", tr.Status.Token, http.StatusForbidden},
		{"Prometheus' ServiceAccount", string(scraper), http.StatusOK},
	} {
		if got := scrapeStatus(t, ctx, target, tc.token); got != tc.want {
			t.Errorf("%s: GET %s = %d, want %d", tc.who, target, got, tc.want)
		}
	}
}

func kubeClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	logf.SetLogger(logr.Discard()) // controller-runtime's client wants a logger
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// insecureClient scrapes like Prometheus does here: the controller serves
// metrics with a self-signed certificate (insecureSkipVerify in the
// ServiceMonitor too); authentication is the bearer token.
var insecureClient = &http.Client{Timeout: 10 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed serving certificate

// scrapeStatus GETs the metrics endpoint (its certificate is self-signed,
// as in a cluster) and returns the HTTP status.
func scrapeStatus(t *testing.T, ctx context.Context, url, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The metrics server may still be binding its port when the controller
	// has already converged: a refused connection is retried for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := insecureClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
