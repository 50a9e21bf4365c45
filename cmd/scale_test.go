package main

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestLeaseNamespace(t *testing.T) {
	noFile := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	file := func(ns string) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			if path != inClusterNamespaceFile {
				return nil, errors.New("unexpected path " + path)
			}
			return []byte(ns + "\n"), nil
		}
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "POD_NAMESPACE" {
				return v
			}
			return ""
		}
	}
	cases := map[string]struct {
		reason   string
		flag     string
		getenv   func(string) string
		readFile func(string) ([]byte, error)
		want     string
	}{
		"flag":       {"the flag wins: shards spread over namespaces share one Lease namespace", "ppc-leases", env("mine"), file("pod"), "ppc-leases"},
		"env":        {"POD_NAMESPACE (downward API) next", "", env("mine"), file("pod"), "mine"},
		"in cluster": {"then the service account's namespace, as leader election finds it", "", env(""), file("purchase-policy-system"), "purchase-policy-system"},
		"outside":    {"outside a cluster: default", "", env(""), noFile, "default"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := leaseNamespace(tc.flag, tc.getenv, tc.readFile); got != tc.want {
				t.Errorf("%s: got %q, want %q", tc.reason, got, tc.want)
			}
		})
	}
}

func TestKubeAPILimitsDefaultsKeepUpWithAFleet(t *testing.T) {
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	base := &rest.Config{Host: "https://api.example", QPS: 20, Burst: 30}
	cfg := withKubeAPILimits(base, float32(o.kubeAPIQPS), o.kubeAPIBurst)
	// 10,000 policies resynced in 3 minutes, about 4 API requests each.
	const needed = 10000 * 4 / 180
	if cfg.QPS < needed || cfg.Burst < int(cfg.QPS) {
		t.Errorf("default QPS %v, burst %d: a 10,000-policy resync needs %d requests/s", cfg.QPS, cfg.Burst, needed)
	}
	if base.QPS != 20 {
		t.Error("the manager's config must be copied, not changed in place")
	}
	if o.maxConcurrent < 32 {
		t.Errorf("--max-concurrent-reconciles defaults to %d: reconciles wait on Microsoft (~150 ms a call), far fewer than a fleet needs", o.maxConcurrent)
	}
}

func TestSoftMemoryLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			if v, ok := m[path]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	noEnv := func(string) string { return "" }
	cases := map[string]struct {
		reason string
		getenv func(string) string
		files  map[string]string
		want   int64
		wantOK bool
	}{
		"cgroup v2":  {"the Deployment's 512Mi limit gives a 332.8 MiB soft limit", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "536870912\n"}, 348966092, true},
		"cgroup v1":  {"cgroup v1 reports the limit in memory.limit_in_bytes", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912"}, 348966092, true},
		"v2 no max":  {"no limit: leave the runtime alone", noEnv, map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		"v1 no max":  {"v1 says unlimited with a number close to 2^63", noEnv, map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"}, 0, false},
		"no cgroup":  {"outside a container nothing is set", noEnv, nil, 0, false},
		"GOMEMLIMIT": {"an explicit GOMEMLIMIT wins (the runtime applied it)", func(k string) string { return map[string]string{"GOMEMLIMIT": "300MiB"}[k] }, map[string]string{"/sys/fs/cgroup/memory.max": "536870912"}, 0, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, ok := softMemoryLimit(tc.getenv, files(tc.files))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("%s: got %d, %v; want %d, %v", tc.reason, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestConfigManagerSpellsOutTheFleetDefaults: the flags config/manager
// deploys (and the benchmark runs with) are the binary's defaults, so
// neither can change without the other.
func TestConfigManagerSpellsOutTheFleetDefaults(t *testing.T) {
	raw, err := os.ReadFile("../config/manager/manager.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var o options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o.BindFlags(fs)
	args := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "- --"), "="); ok && strings.HasPrefix(strings.TrimSpace(line), "- --") {
			args[name] = value
		}
	}
	for _, name := range []string{"max-concurrent-reconciles", "kube-api-qps", "kube-api-burst", "writes-per-tenant"} {
		f := fs.Lookup(name)
		if f == nil {
			t.Fatalf("no flag --%s", name)
		}
		if got, ok := args[name]; !ok || got != f.DefValue {
			t.Errorf("config/manager passes --%s=%q, want the binary's default %q", name, got, f.DefValue)
		}
	}
}
