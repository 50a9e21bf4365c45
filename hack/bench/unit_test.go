package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

func TestCompareWithFloor(t *testing.T) {
	fl := floor{syncs: 10, puts: 200, tokens: 20}
	atFloor := map[string]int{
		"licensing GET": 10, keyProducts: 10, "licensing PUT": 200, keyPut: 200,
		keySubscriptions: 10, keySubscribedSkus: 10, "authority POST": 20, keyToken: 20,
	}
	with := func(extra map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range atFloor {
			out[k] = v
		}
		for k, v := range extra {
			out[k] += v
		}
		return out
	}
	cases := map[string]struct {
		reason     string
		requests   m365sim.RequestStats
		reconciles int
		wantRatio  float64
		wantExcess []string
	}{
		"at the floor": {
			reason:    "exactly the floor is ratio 1 with nothing to explain",
			requests:  m365sim.RequestStats{Counts: atFloor},
			wantRatio: 1,
		},
		"429 retries": {
			reason:    "PUTs retried after a 429 are excess explained by the throttling",
			requests:  m365sim.RequestStats{Counts: with(map[string]int{keyPut: 5}), Throttled: 5},
			wantRatio: 235.0 / 230,
			wantExcess: []string{"licensing PUT product: 5 above the floor of 200",
				"5 answers were 429 (Microsoft throttling), each retried after its Retry-After"},
		},
		"extra syncs": {
			reason:     "a second sync of a policy is excess explained by the extra reconcile",
			requests:   m365sim.RequestStats{Counts: with(map[string]int{keyProducts: 1, keySubscriptions: 1, keySubscribedSkus: 1})},
			reconciles: 11,
			wantRatio:  233.0 / 230,
			wantExcess: []string{"graph GET subscribedSkus: 1 above the floor of 10", "graph GET subscriptions: 1 above the floor of 10",
				"licensing GET products: 1 above the floor of 10",
				"11 reconciles for 10 policies: each extra one syncs again (a policy's interval, default 15m, elapsed within the phase, or a retry)"},
		},
		"a route outside the floor": {
			reason:     "listing every user is never in the floor, and nothing explains it",
			requests:   m365sim.RequestStats{Counts: with(map[string]int{"graph GET users-list": 2})},
			reconciles: 10,
			wantRatio:  232.0 / 230,
			wantExcess: []string{"graph GET users-list: 2 above the floor of 0",
				"unexplained: no 429, no refused or early request, no reconcile beyond one per policy"},
		},
		"token metadata": {
			reason:    "Entra metadata reads are token traffic: listed, but neither in the ratio nor unexplained",
			requests:  m365sim.RequestStats{Counts: with(map[string]int{"authority GET openid-configuration": 20})},
			wantRatio: 1,
			wantExcess: []string{"authority GET openid-configuration: 20 above the floor of 0 " +
				"(Entra metadata read while acquiring tokens; counted with tokens, not in the ratio)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := compareWithFloor(tc.requests, fl, tc.reconciles)
			if got.Ratio != tc.wantRatio {
				t.Errorf("%s: ratio %v, want %v", tc.reason, got.Ratio, tc.wantRatio)
			}
			if diff := cmp.Diff(tc.wantExcess, got.Excess); diff != "" {
				t.Errorf("%s: excess (-want +got):\n%s", tc.reason, diff)
			}
			if _, ok := got.Requests["licensing GET"]; ok {
				t.Errorf("the per-endpoint total %q is counted as a route", "licensing GET")
			}
		})
	}
}

func TestBuildControllerArgs(t *testing.T) {
	ep := endpointFlags{licensing: "https://l", graph: "https://g", authority: "https://a", caFile: "/ca.pem", kubeconfig: "/kc"}
	withNamespace := binaryFlags{"leader-elect": "", "leader-election-namespace": "", "metrics-bind-address": ":8443",
		"health-probe-bind-address": ":8081", concurrencyFlag: "4"}
	withoutNamespace := binaryFlags{"leader-elect": "", "metrics-bind-address": ":8443", concurrencyFlag: "4"}
	cases := map[string]struct {
		reason      string
		deployed    []string
		flags       binaryFlags
		wantKept    []string
		wantGone    []string
		wantWorkers int
		wantErr     string
	}{
		"leader election gets a namespace": {
			reason:   "outside a cluster --leader-elect needs the namespace a pod would have",
			deployed: []string{"--leader-elect", "--metrics-bind-address=:8443"},
			flags:    withNamespace,
			wantKept: []string{"--leader-elect", "--leader-election-namespace=system", "--licensing-endpoint=https://l",
				"--graph-endpoint=https://g", "--authority-host=https://a", "--ca-file=/ca.pem", "--kubeconfig=/kc"},
			wantGone:    []string{"--metrics-bind-address=:8443"},
			wantWorkers: 4,
		},
		"leader election dropped": {
			reason:      "a binary that cannot be told the namespace cannot elect outside a cluster",
			deployed:    []string{"--leader-elect", "--metrics-bind-address=:8443"},
			flags:       withoutNamespace,
			wantGone:    []string{"--leader-elect"},
			wantWorkers: 4,
		},
		"concurrency from the args": {
			reason:      "a deployed --max-concurrent-reconciles wins over the default",
			deployed:    []string{"--max-concurrent-reconciles=64", "--metrics-bind-address=0"},
			flags:       withNamespace,
			wantKept:    []string{"--max-concurrent-reconciles=64", "--metrics-bind-address=0"},
			wantWorkers: 64,
		},
		"unknown flag": {
			reason:   "config/manager passing a flag the binary lacks would crash the Deployment",
			deployed: []string{"--no-such-flag=1"},
			flags:    withNamespace,
			wantErr:  "--no-such-flag, which the controller binary does not know",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := buildControllerArgs(tc.deployed, tc.flags, ep, controllerNamespace)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%s: error %v, want %q", tc.reason, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Join(got.Args, " ")
			for _, a := range tc.wantKept {
				if !strings.Contains(" "+args+" ", " "+a+" ") {
					t.Errorf("%s: %q missing from %s", tc.reason, a, args)
				}
			}
			for _, a := range tc.wantGone {
				if strings.Contains(" "+args+" ", " "+a+" ") {
					t.Errorf("%s: %q still in %s", tc.reason, a, args)
				}
			}
			if addr := argValue(got.Args, "metrics-bind-address"); addr != "0" && !strings.HasPrefix(addr, "127.0.0.1:") {
				t.Errorf("metrics bound to %q, want a free local port", addr)
			}
			if got.Concurrency != tc.wantWorkers {
				t.Errorf("%s: concurrency %d, want %d", tc.reason, got.Concurrency, tc.wantWorkers)
			}
			if len(got.Changes) == 0 {
				t.Error("no change was reported")
			}
			if want := "POD_NAMESPACE=" + controllerNamespace; !slices.Contains(got.Env, want) {
				t.Errorf("env %v lacks %s: the ownership Leases would leave the namespace config/rbac grants", got.Env, want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	help := `Usage of bin/manager:
  -leader-elect
    	Enable leader election.
  -max-concurrent-reconciles int
    	Policies reconciled in parallel. (default 4)
  -metrics-bind-address string
    	Metrics address; 0 disables the metrics server. (default ":8443")
  -metrics-secure
    	Serve metrics over HTTPS. (default true)
`
	want := binaryFlags{"leader-elect": "", concurrencyFlag: "4", "metrics-bind-address": ":8443", "metrics-secure": "true"}
	if diff := cmp.Diff(want, parseHelp(help)); diff != "" {
		t.Errorf("flags (-want +got):\n%s", diff)
	}
}

func TestQuantile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	if q := quantilesOf(d); q.P50 != 50 || q.P99 != 99 {
		t.Errorf("quantiles of 1..100 ms: %+v, want p50 50, p99 99", q)
	}
}

func TestRequestKey(t *testing.T) {
	ref := func(resource, group, name, sub string) *auditv1.ObjectReference {
		return &auditv1.ObjectReference{Resource: resource, APIGroup: group, Name: name, Subresource: sub}
	}
	cases := map[string]struct {
		e    auditv1.Event
		want string
	}{
		"status patch": {auditv1.Event{Verb: "patch", ObjectRef: ref("tenantpurchasepolicies", "commerce.tenantpolicy.io", "p", "status")},
			"patch tenantpurchasepolicies/status"},
		"tenant Lease": {auditv1.Event{Verb: "get", ObjectRef: ref("leases", "coordination.k8s.io", "tenant-72f988bf-86f1-41af-91ab-2d7cd011db47", "")},
			"get leases (tenant)"},
		"leader election": {auditv1.Event{Verb: "update", ObjectRef: ref("leases", "coordination.k8s.io", "purchase-policy-controller.tenantpolicy.io", "")},
			"update leases"},
		"ownership list": {auditv1.Event{Verb: "list", RequestURI: "/apis/x?fieldSelector=spec.tenantID%3Dt", ObjectRef: ref("tenantpurchasepolicies", "commerce.tenantpolicy.io", "", "")},
			"list tenantpurchasepolicies (field selector)"},
		"core Event": {auditv1.Event{Verb: "create", ObjectRef: ref("events", "", "e", "")}, "create events.core"},
	}
	for name, tc := range cases {
		if got := requestKey(&tc.e); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestMemoryLimitEnv(t *testing.T) {
	env, change := memoryLimitEnv(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")})
	if env != "GOMEMLIMIT=332MiB" || !strings.Contains(change, "512Mi") {
		t.Errorf("512Mi limit: %q (%q), want GOMEMLIMIT=332MiB, as the binary sets in a pod", env, change)
	}
	if env, _ := memoryLimitEnv(nil); env != "" {
		t.Errorf("no limit: %q, want no GOMEMLIMIT", env)
	}
	// The binary's own ratio, so the harness cannot drift from it.
	src, err := os.ReadFile(filepath.Join("..", "..", "cmd", "scale.go"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("const softMemoryLimitRatio = %v\n", softMemoryLimitRatio); !strings.Contains(string(src), want) {
		t.Errorf("cmd/scale.go lacks %q: the harness's GOMEMLIMIT no longer matches what the binary sets in a pod", want)
	}
}
