// Command manager runs the purchase-policy-controller: it keeps the
// self-service purchase policy of Microsoft 365 tenants matching their
// TenantPurchasePolicy resources. It decides the process's wiring: flags,
// the Microsoft endpoints, the cache's scope (watched namespaces, the shard's
// label selector), leader election and its Lease name, secure metrics and
// probes. It must not hold reconcile logic (controllers/) nor let anything
// but a flag choose an endpoint.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// options are the controller's flags.
type options struct {
	endpoints          m365.Endpoints
	caFile             string
	maxConcurrent      int
	watchSelector      string
	watchNamespaces    string
	metricsAddr        string
	metricsSecure      bool
	metricsTenantLabel bool
	probeAddr          string
	leaderElect        bool
	leaderElectionID   string
	leaderElectionNS   string
	leaseDuration      time.Duration
	renewDeadline      time.Duration
	retryPeriod        time.Duration
	reconcileTimeout   time.Duration
	callTimeout        time.Duration
	writesPerTenant    int
	kubeAPIQPS         float64
	kubeAPIBurst       int
	leaseNamespace     string
	pprofAddr          string
}

// BindFlags registers the options on fs with their defaults.
func (o *options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.endpoints.AuthorityHost, "authority-host", m365.PublicAuthorityHost, "Entra ID authority origin (https://host[:port]).")
	fs.StringVar(&o.endpoints.Licensing, "licensing-endpoint", m365.PublicLicensing, "Licensing (self-service purchase policy) API origin.")
	fs.StringVar(&o.endpoints.Graph, "graph-endpoint", m365.PublicGraph, "Microsoft Graph origin.")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of extra CA certificates trusted for the endpoints (added to the system pool).")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-reconciles", defaultMaxConcurrent, "Policies reconciled in parallel (the work waits on Microsoft, not on CPU).")
	fs.StringVar(&o.watchSelector, "watch-label-selector", "", "Only reconcile policies and policy sets matching this label selector (sharding), e.g. shard=a.")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", "", "Only reconcile policies in these namespaces (comma-separated; empty: all). Secrets and ServiceAccounts are then read only there.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Metrics address; 0 disables the metrics server.")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization.")
	fs.BoolVar(&o.metricsTenantLabel, "metrics-tenant-label", false, "Add the tenant ID as a metrics label (only for small fleets: cardinality).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Health and readiness probe address.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Enable leader election (one active controller per shard).")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "", "Name of the leader election Lease (default: "+defaultLeaderElectionID+", or one derived from --watch-label-selector).")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the pod's namespace).")
	fs.DurationVar(&o.leaseDuration, "leader-election-lease-duration", defaultLeaseDuration, "How long a standby waits after the leader's last renewal before taking over.")
	fs.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", defaultRenewDeadline, "How long the leader keeps trying to renew before it stops (a busy API server answers slowly: keep it well above a status patch's latency).")
	fs.DurationVar(&o.retryPeriod, "leader-election-retry-period", defaultRetryPeriod, "Interval between leader election attempts.")
	fs.DurationVar(&o.reconcileTimeout, "reconcile-timeout", 2*time.Minute, "Deadline of one reconcile.")
	fs.DurationVar(&o.callTimeout, "call-timeout", m365.DefaultCallTimeout, "Timeout of one call to Microsoft.")
	fs.IntVar(&o.writesPerTenant, "writes-per-tenant", controllers.DefaultWritesPerTenant, "PUTs of one tenant sent at once (one per differing product, all behind the tenant's Retry-After).")
	fs.Float64Var(&o.kubeAPIQPS, "kube-api-qps", defaultKubeAPIQPS, "Client-side limit of requests per second to the Kubernetes API server (negative: no limit).")
	fs.IntVar(&o.kubeAPIBurst, "kube-api-burst", defaultKubeAPIBurst, "Burst above --kube-api-qps.")
	fs.StringVar(&o.leaseNamespace, "lease-namespace", "", "Namespace of the tenant ownership Leases; every shard must use the same one (default: the pod's namespace).")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "0", "Address of the Go pprof endpoint, for profiling (0: off).")
}

func main() {
	var o options
	o.BindFlags(flag.CommandLine)
	zo := zap.Options{}
	zo.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zo)))
	if limit, ok := softMemoryLimit(os.Getenv, os.ReadFile); ok {
		debug.SetMemoryLimit(limit)
		ctrl.Log.Info("soft memory limit from the container's", "bytes", limit)
	}
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "controller stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if err := o.endpoints.Validate(); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return err
	}
	sel, err := parseSelector(o.watchSelector)
	if err != nil {
		return err
	}
	namespaces, err := parseNamespaces(o.watchNamespaces)
	if err != nil {
		return err
	}
	leaseName, err := leaderElectionID(o.leaderElectionID, sel)
	if err != nil {
		return err
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.metricsSecure,
		TLSOpts:       []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}, // HTTP/2 off
	}
	if o.metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	leaseNS := podLeaseNamespace(o.leaseNamespace)
	cacheOpts := cacheOptions(sel, namespaces)
	everyPolicy := holdsEveryPolicy(cacheOpts)
	cacheOpts.ByObject = withTenantLeases(cacheOpts.ByObject, leaseNS)
	cacheOpts.DefaultTransform = controllers.CacheTransform
	cfg := withKubeAPILimits(ctrl.GetConfigOrDie(), float32(o.kubeAPIQPS), o.kubeAPIBurst)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		PprofBindAddress:        o.pprofAddr,
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        leaseName,
		LeaderElectionNamespace: o.leaderElectionNS,
		LeaseDuration:           &o.leaseDuration,
		RenewDeadline:           &o.renewDeadline,
		RetryPeriod:             &o.retryPeriod,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	r, err := newReconciler(mgr, o, leaseNS, everyPolicy)
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr, o.maxConcurrent); err != nil {
		return fmt.Errorf("setting up controller: %w", err)
	}
	sets, err := controllers.NewSetReconciler(mgr, r)
	if err != nil {
		return err
	}
	if err := sets.SetupWithManager(mgr, o.maxConcurrent); err != nil {
		return fmt.Errorf("setting up the policy set controller: %w", err)
	}
	if err := errors.Join(mgr.AddHealthzCheck("healthz", healthz.Ping), mgr.AddReadyzCheck("readyz", healthz.Ping)); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "licensing", o.endpoints.Licensing, "graph", o.endpoints.Graph, "authority", o.endpoints.AuthorityHost,
		"namespaces", namespaces, "selector", sel.String(), "leaderElectionID", leaseName)
	return mgr.Start(ctx)
}

// newReconciler wires the Microsoft clients into the reconciler.
func newReconciler(mgr ctrl.Manager, o options, leaseNS string, cacheHoldsEveryPolicy bool) (*controllers.TenantPurchasePolicyReconciler, error) {
	httpClient, err := m365.NewHTTPClient(o.caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-file: %w", err)
	}
	return controllers.NewReconciler(mgr, controllers.Config{
		Endpoints:             o.endpoints,
		HTTPClient:            httpClient,
		CallTimeout:           o.callTimeout,
		ReconcileTimeout:      o.reconcileTimeout,
		Metrics:               controllers.NewMetrics(metrics.Registry, o.metricsTenantLabel),
		WritesPerTenant:       o.writesPerTenant,
		LeaseNamespace:        leaseNS,
		CacheHoldsEveryPolicy: cacheHoldsEveryPolicy,
	})
}
