package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

func mustID(t *testing.T, flagValue, selector string) string {
	t.Helper()
	sel, err := parseSelector(selector)
	if err != nil {
		t.Fatal(err)
	}
	id, err := leaderElectionID(flagValue, sel)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLeaderElectionID(t *testing.T) {
	cases := map[string]struct {
		flag, selector string
		want           string
	}{
		"no shard keeps the historical Lease, so an upgrade does not elect a second leader": {
			want: defaultLeaderElectionID},
		"an explicit id wins over the selector": {
			flag: "tpp-shard-a", selector: "shard=a", want: "tpp-shard-a"},
		"a shard gets its own Lease (golden value: changing the derivation splits running shards' elections)": {
			selector: "shard=a", want: "purchase-policy-controller-3d8dfb268d.tenantpolicy.io"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(c.want, mustID(t, c.flag, c.selector)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLeaderElectionIDPerShard(t *testing.T) {
	selectors := []string{"shard=a", "shard=b", "shard in (a,b)", "shard!=a", "region=eu,shard=a", "!shard"}
	seen := map[string]string{}
	for _, s := range selectors {
		id := mustID(t, "", s)
		if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
			t.Errorf("selector %q: id %q is not a valid Lease name: %s", s, id, strings.Join(errs, "; "))
		}
		if other, dup := seen[id]; dup {
			t.Errorf("selectors %q and %q share the Lease %q: one shard would never run", other, s, id)
		}
		seen[id] = s
	}
}

func TestLeaderElectionIDIsCanonical(t *testing.T) {
	for _, pair := range [][2]string{
		{"region=eu,shard=a", "shard=a, region=eu"},
		{"shard in (a,b)", "shard in (b, a)"},
	} {
		if a, b := mustID(t, "", pair[0]), mustID(t, "", pair[1]); a != b {
			t.Errorf("%q and %q select the same policies but elect on %q and %q", pair[0], pair[1], a, b)
		}
	}
}

func TestLeaderElectionIDRejectsInvalidFlag(t *testing.T) {
	_, err := leaderElectionID("Shard_A", nil)
	if err == nil || !strings.Contains(err.Error(), "--leader-election-id") {
		t.Errorf("an id that is no DNS subdomain: got %v, want an error naming --leader-election-id", err)
	}
}

func TestParseNamespaces(t *testing.T) {
	got, err := parseNamespaces(" tenants-a,tenants-b ,")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"tenants-a", "tenants-b"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := parseNamespaces("tenants-a,Tenants_B"); err == nil || !strings.Contains(err.Error(), "Tenants_B") {
		t.Errorf("invalid namespace: got %v, want an error naming it", err)
	}
}

func TestCacheOptionsWatchNamespaces(t *testing.T) {
	sel, _ := parseSelector("")
	o := cacheOptions(sel, []string{"tenants-a", "tenants-b"})
	var got []string
	for ns := range o.DefaultNamespaces {
		got = append(got, ns)
	}
	if diff := cmp.Diff([]string{"tenants-a", "tenants-b"}, got, cmpSorted); diff != "" {
		t.Errorf("cached namespaces (-want +got):\n%s", diff)
	}
	if o.ByObject != nil {
		t.Errorf("no selector: the cache must not filter policies by label, got %v", o.ByObject)
	}
	if all := cacheOptions(sel, nil); all.DefaultNamespaces != nil {
		t.Errorf("no --watch-namespaces: the cache must cover every namespace, got %v", all.DefaultNamespaces)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// Elections read the cache only when it holds every policy of the cluster;
// a shard or a namespace-scoped replica must ask the API server.
func TestHoldsEveryPolicy(t *testing.T) {
	everything, _ := parseSelector("")
	shard, _ := parseSelector("shard=a")
	cases := map[string]struct {
		o    cache.Options
		want bool
	}{
		"unsharded, cluster-wide":  {cacheOptions(everything, nil), true},
		"a shard":                  {cacheOptions(shard, nil), false},
		"namespace-scoped":         {cacheOptions(everything, []string{"tenants-a"}), false},
		"a namespace-scoped shard": {cacheOptions(shard, []string{"tenants-a"}), false},
	}
	for name, tc := range cases {
		if got := holdsEveryPolicy(tc.o); got != tc.want {
			t.Errorf("%s: holds every policy = %v, want %v", name, got, tc.want)
		}
	}
}
