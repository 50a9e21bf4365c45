package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// The demo's Prometheus.
const (
	// promJob is the scrape job; the alert rules select on it (the
	// ServiceMonitor's jobLabel gives the same in a cluster).
	promJob = "purchase-policy-controller"
	// promScraper is the ServiceAccount whose token Prometheus scrapes with.
	promScraper = "prometheus"
	// promInterval is the scrape and rule evaluation interval.
	promInterval     = "2s"
	promReadyTimeout = time.Minute
	// scraperTokenTTL outlasts an afternoon of trying the demo.
	scraperTokenTTL = 24 * 60 * 60
)

// monitoring is what --prometheus adds: the controller serves its metrics as
// deployed (HTTPS, every scrape authenticated and authorized through the API
// server) and a real Prometheus scrapes them with the token of a
// ServiceAccount bound to the shipped metrics-reader ClusterRole, evaluating
// the shipped alert rules.
type monitoring struct {
	bin         string
	metricsAddr string
	url         string
	proc        *procs.Child
	api         promv1.API
}

// newMonitoring reserves the addresses when --prometheus is set; nil means
// no monitoring.
func newMonitoring(bin string) (*monitoring, error) {
	if bin == "" {
		return nil, nil
	}
	metrics, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	web, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	c, err := promapi.NewClient(promapi.Config{Address: "http://" + web})
	if err != nil {
		return nil, err
	}
	return &monitoring{bin: bin, metricsAddr: metrics, url: "http://" + web, api: promv1.NewAPI(c)}, nil
}

// metricsFlags are the controller's metrics flags: off without monitoring,
// otherwise as deployed: secure serving (the default) and leader election,
// whose Lease the demo's namespace holds.
func (m *monitoring) metricsFlags() []string {
	if m == nil {
		return []string{"--metrics-bind-address", "0"}
	}
	return []string{"--metrics-bind-address", m.metricsAddr, "--leader-elect", "--leader-election-namespace", demoNamespace}
}

// startPrometheus lets the scraper ServiceAccount read /metrics, writes the
// rules and the scrape configuration and starts Prometheus.
func (d *demo) startPrometheus(ctx context.Context) error {
	m := d.mon
	if m == nil {
		return nil
	}
	token, err := d.scraperToken(ctx)
	if err != nil {
		return fmt.Errorf("scraper token: %w", err)
	}
	if err := os.WriteFile(d.path("prometheus-token"), []byte(token), 0o600); err != nil {
		return err
	}
	if err := writeRules(filepath.Join(d.root, "config", "prometheus", "prometheusrule.yaml"), d.path("rules.yaml")); err != nil {
		return err
	}
	if err := writeJSONAsYAML(d.path("prometheus.yml"), prometheusConfig(m.metricsAddr, d.path("prometheus-token"), d.path("rules.yaml"))); err != nil {
		return err
	}
	if m.proc, err = procs.Start("prometheus", m.bin, []string{
		"--config.file", d.path("prometheus.yml"),
		"--storage.tsdb.path", d.path("prometheus-data"),
		"--web.listen-address", m.url[len("http://"):],
	}, nil, d.path("prometheus.log")); err != nil {
		return err
	}
	if err := m.waitReady(ctx); err != nil {
		return err
	}
	d.say("Prometheus %s scrapes the controller's metrics at https://%s/metrics with ServiceAccount %s/%s's token", m.url, m.metricsAddr, demoNamespace, promScraper)
	return nil
}

// scraperToken creates the scraper ServiceAccount, binds it to the
// metrics-reader ClusterRole of config/rbac and returns a token for it.
func (d *demo) scraperToken(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, apiCallTimeout)
	defer cancel()
	role, err := metricsReaderRole(filepath.Join(d.root, "config", "rbac", "metrics_auth_role.yaml"))
	if err != nil {
		return "", err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: promScraper, Namespace: demoNamespace}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-" + promScraper + "-" + role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}},
	}
	for _, o := range []client.Object{sa, role, binding} {
		if err := d.kube.Create(ctx, o); err != nil {
			return "", fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	ttl := int64(scraperTokenTTL)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}
	if err := d.kube.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// metricsReaderRole reads the ClusterRole that may get /metrics from the
// shipped RBAC.
func metricsReaderRole(path string) (*rbacv1.ClusterRole, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	docs := utilyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no ClusterRole grants get on /metrics", path)
		}
		if err != nil {
			return nil, err
		}
		role := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal(doc, role); err != nil {
			return nil, err
		}
		if role.Kind == "ClusterRole" && grantsMetrics(role) {
			return role, nil
		}
	}
}

func grantsMetrics(role *rbacv1.ClusterRole) bool {
	for _, r := range role.Rules {
		for _, u := range r.NonResourceURLs {
			if u == "/metrics" && len(r.Verbs) > 0 {
				return true
			}
		}
	}
	return false
}

// writeRules writes the PrometheusRule's spec, a Prometheus rule file.
func writeRules(prometheusRule, out string) error {
	b, err := os.ReadFile(prometheusRule)
	if err != nil {
		return err
	}
	var pr struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &pr); err != nil {
		return fmt.Errorf("%s: %w", prometheusRule, err)
	}
	rules, err := yaml.JSONToYAML(pr.Spec)
	if err != nil {
		return err
	}
	return os.WriteFile(out, rules, 0o600)
}

// prometheusConfig scrapes the controller as the ServiceMonitor does:
// HTTPS with the token, the metrics' own labels kept.
func prometheusConfig(target, tokenFile, rulesFile string) map[string]any {
	return map[string]any{
		"global":     map[string]any{"scrape_interval": promInterval, "scrape_timeout": promInterval, "evaluation_interval": promInterval},
		"rule_files": []string{rulesFile},
		"scrape_configs": []any{map[string]any{
			"job_name":       promJob,
			"scheme":         "https",
			"honor_labels":   true,
			"tls_config":     map[string]any{"insecure_skip_verify": true}, // the controller's self-signed serving certificate
			"authorization":  map[string]any{"credentials_file": tokenFile},
			"static_configs": []any{map[string]any{"targets": []string{target}}},
		}},
	}
}

func writeJSONAsYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// waitReady polls Prometheus' readiness endpoint.
func (m *monitoring) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, promReadyTimeout)
	defer cancel()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url+"/-/ready", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if gone, err := m.proc.Exited(); gone {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready within %s", promReadyTimeout)
		case <-time.After(pollInterval):
		}
	}
}

// stepMonitoring has Microsoft throttle Contoso and a user buy in Fabrikam,
// then waits until Prometheus has scraped it all and the purchase alert is
// raised.
func (d *demo) stepMonitoring(ctx context.Context) ([]string, error) {
	contoso, fabrikam := d.tenants[0], d.tenants[1]
	throttle := m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: http.StatusTooManyRequests, RetryAfter: "20", Count: 1}
	if err := d.sim.InjectFault(ctx, contoso.id, throttle); err != nil {
		return nil, err
	}
	d.act("Microsoft answers Contoso's next licensing call with 429 and Retry-After: 20")
	reconciling := func(p *v1.TenantPurchasePolicy) error {
		return conditionIs(p, v1.ReconcilingCondition, metav1.ConditionTrue)
	}
	for range 2 { // the second sync finds the gate closed: nothing leaves for 20 s
		if _, err := d.syncAndWait(ctx, contoso, reconciling); err != nil {
			return nil, err
		}
	}
	sub, err := d.sim.Purchase(ctx, fabrikam.id, m365sim.PurchaseRequest{UserPrincipalName: "adele@" + fabrikam.domain, SkuPartNumber: m365sim.SkuCopilot})
	if err != nil {
		return nil, fmt.Errorf("buying Copilot in Fabrikam: %w", err)
	}
	d.act("adele@%s buys a Copilot seat in Fabrikam: subscription %s", fabrikam.domain, sub.ID)
	if _, err := d.syncAndWait(ctx, fabrikam, func(p *v1.TenantPurchasePolicy) error { return selfServiceIs(p, sub) }); err != nil {
		return nil, err
	}
	return d.mon.waitForScrapes(ctx, d.o.stepTimeout)
}

// monitoringQueries are what stepMonitoring waits for, with how to say it.
var monitoringQueries = []struct{ query, line string }{
	{`sum(up{job="` + promJob + `"})`, "controller targets up: %s"},
	{`sum(tpp_microsoft_requests_total{code="429"})`, "429s from Microsoft: %s"},
	{`sum(tpp_microsoft_throttle_waits_total)`, "requests held back by Retry-After: %s"},
	{`sum(tpp_self_service_purchases_total)`, "self-service purchases detected: %s"},
	{`min(tpp_full_refund_deadline_timestamp_seconds{policy="fabrikam"} - time()) / 3600`, "hours until Fabrikam's full-refund deadline: %s"},
}

// waitForScrapes waits until every monitoring query has a non-zero answer
// and the SelfServicePurchaseDetected alert is pending or firing.
func (m *monitoring) waitForScrapes(ctx context.Context, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		lines, err := m.scraped(ctx)
		if err == nil {
			return lines, nil
		}
		if gone, exitErr := m.proc.Exited(); gone {
			return nil, exitErr
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("prometheus, after %s: %w", timeout, err)
		case <-time.After(pollInterval):
		}
	}
}

func (m *monitoring) scraped(ctx context.Context) ([]string, error) {
	lines := []string{"Prometheus " + m.url + " (active alerts: " + m.url + "/api/v1/alerts)"}
	for _, q := range monitoringQueries {
		v, err := m.scalar(ctx, q.query)
		if err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf(q.line, v))
	}
	state, err := m.alertState(ctx, "SelfServicePurchaseDetected")
	if err != nil {
		return nil, err
	}
	return append(lines, "alert SelfServicePurchaseDetected: "+state), nil
}

// scalar runs an instant query that must answer one non-zero sample.
func (m *monitoring) scalar(ctx context.Context, query string) (string, error) {
	v, _, err := m.api.Query(ctx, query, time.Now())
	if err != nil {
		return "", fmt.Errorf("%s: %w", query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 || vec[0].Value == 0 {
		return "", fmt.Errorf("%s: want one non-zero sample, got %v", query, v)
	}
	return strconv.FormatFloat(float64(vec[0].Value), 'g', 4, 64), nil
}

// alertState returns "pending" or "firing" for an active alert.
func (m *monitoring) alertState(ctx context.Context, name string) (string, error) {
	res, err := m.api.Alerts(ctx)
	if err != nil {
		return "", err
	}
	for _, a := range res.Alerts {
		if string(a.Labels[model.AlertNameLabel]) == name {
			return string(a.State), nil
		}
	}
	return "", fmt.Errorf("alert %s is not active", name)
}

// process is Prometheus' child process, nil without monitoring.
func (m *monitoring) process() *procs.Child {
	if m == nil {
		return nil
	}
	return m.proc
}

// tryIt is the monitoring part of the demo's "try it yourself" text.
func (m *monitoring) tryIt(tokenFile string) string {
	if m == nil {
		return ""
	}
	return fmt.Sprintf(`
Prometheus: %s (active alerts: %s/api/v1/alerts), scraping the controller's metrics:
controller metrics: https://%s/metrics
  curl -k -H "Authorization: Bearer $(cat %s)" https://%s/metrics
`, m.url, m.url, m.metricsAddr, tokenFile, m.metricsAddr)
}
