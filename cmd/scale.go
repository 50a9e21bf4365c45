package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tenantpolicy/purchase-policy-controller/controllers"
)

// Defaults sized for a fleet (README "Scale"): the work of a reconcile is
// waiting on Microsoft (about 150 ms a call), not on CPU, so many run at
// once; the API server sees about four requests per reconcile, and
// client-go's own default (5 QPS, controller-runtime's 20) would be the
// bottleneck long before the API server is.
const (
	defaultMaxConcurrent = 128
	defaultKubeAPIQPS    = 500
	defaultKubeAPIBurst  = 1000
)

// Leader election timing (Flux's defaults, not client-go's 15/10/2 s): the
// leader's renewal goes to the API server in the same priority-and-fairness
// flow as the fleet's status patches, so when the API server is saturated
// it waits behind them; a 10-second renew deadline then lost the lease in
// the N=10,000 benchmark (hack/bench/results/2026-12-02-N10000-failed.md).
// Failover after a crash takes at most the lease duration.
const (
	defaultLeaseDuration = 35 * time.Second
	defaultRenewDeadline = 30 * time.Second
	defaultRetryPeriod   = 5 * time.Second
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

// softMemoryLimitRatio is the share of the container's memory limit the Go
// runtime aims to stay under when GOMEMLIMIT is not set: near it the garbage
// collector works harder instead of letting the heap double (GOGC=100) into
// the kernel's OOM kill. 0.65 gives the shipped 512Mi limit a 332 MiB soft
// limit, which kept a 10,000-tenant replica's RSS (the soft limit plus the
// binary's pages) under 400 MiB in make bench; at 0.75 it peaked at 408 MiB.
const softMemoryLimitRatio = 0.65

// cgroupMemoryFiles hold the container's memory limit (cgroup v2, then v1).
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// softMemoryLimit returns the soft memory limit for the Go runtime:
// softMemoryLimitRatio of the cgroup's memory limit; ok is false when
// GOMEMLIMIT is set (the runtime applied it already) or there is no limit.
func softMemoryLimit(getenv func(string) string, readFile func(string) ([]byte, error)) (limit int64, ok bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	for _, path := range cgroupMemoryFiles {
		b, err := readFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<50 { // "max", or v1's "unlimited" (close to 2^63)
			return 0, false
		}
		return int64(float64(n) * softMemoryLimitRatio), true
	}
	return 0, false
}
