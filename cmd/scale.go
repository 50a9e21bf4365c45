package main

import (
	"os"
	"strings"

	"k8s.io/client-go/rest"

	"github.com/tenantpolicy/purchase-policy-controller/controllers"
)

// Defaults sized for a fleet (README "Scale"): the work of a reconcile is
// waiting on Microsoft (about 150 ms a call), not on CPU, so many run at
// once; the API server sees about four requests per reconcile, and
// client-go's own default (5 QPS, controller-runtime's 20) would be the
// bottleneck long before the API server is.
const (
	defaultMaxConcurrent = 64
	defaultKubeAPIQPS    = 500
	defaultKubeAPIBurst  = 1000
)

// inClusterNamespaceFile holds the pod's namespace in a cluster.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// leaseNamespace is where the tenant Leases go: the flag when set, else the
// pod's namespace (POD_NAMESPACE, else the service account's namespace
// file), else controllers.DefaultLeaseNamespace outside a cluster.
func leaseNamespace(flagValue string, getenv func(string) string, readFile func(string) ([]byte, error)) string {
	if flagValue != "" {
		return flagValue
	}
	if ns := strings.TrimSpace(getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := readFile(inClusterNamespaceFile); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return controllers.DefaultLeaseNamespace
}

// podLeaseNamespace is leaseNamespace from this process's environment.
func podLeaseNamespace(flagValue string) string {
	return leaseNamespace(flagValue, os.Getenv, os.ReadFile)
}

// withKubeAPILimits returns cfg with the client-side rate limit of
// --kube-api-qps and --kube-api-burst (a negative QPS turns it off).
func withKubeAPILimits(cfg *rest.Config, qps float32, burst int) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	return cfg
}
