package install

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// allowed is the explicit allow-list: every permission the controller may
// hold, and why. README "Permissions" says the same; the end-to-end test
// (test/e2e) proves the controller works with exactly these.
var (
	// managerGrants are needed wherever policies are reconciled.
	managerGrants = []struct{ resource, verb, why string }{
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "list", "the informer's initial list (and, cluster-wide, an ownership election)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "get", "a loser reads the owner its tenant's Lease names (uncached: another shard's or namespace's)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "watch", "the informer"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "patch", "add and remove the finalizer (a merge patch of metadata.finalizers)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies/status", "update", "the one status write per reconcile (a whole update, optimistic lock)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "get", "a policy set reads a child's name uncached before creating it, so it never takes over a policy it does not own"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "create", "a policy set creates its children (server-side apply)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicies", "delete", "a policy set prunes the children of tenants that left, and deletes them with the set"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicysets", "list", "the set informer's initial list"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicysets", "watch", "the set informer"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicysets", "patch", "add and remove the set's finalizer"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicysets/status", "patch", "the set's status patch (only when it changed)"},
		{"commerce.tenantpolicy.io/tenantpurchasepolicysets/finalizers", "update", "children carry a blockOwnerDeletion owner reference to their set (OwnerReferencesPermissionEnforcement)"},
		{"core/secrets", "get", "read a policy's client secret, certificate or refresh token (uncached)"},
		{"core/secrets", "patch", "write a rotated delegated refresh token back"},
		{"core/serviceaccounts", "get", "check the workload identity ServiceAccount's client-id annotation"},
		{"core/serviceaccounts/token", "create", "request its token for api://AzureADTokenExchange (the admission policy pins the audience)"},
		{"events.k8s.io/events", "create", "record Events on policies"},
		{"events.k8s.io/events", "patch", "update a repeated Event's series"},
	}
	// leaderGrants are needed in the controller's own namespace.
	leaderGrants = []struct{ resource, verb, why string }{
		{"coordination.k8s.io/leases", "get", "read the leader Lease"},
		{"coordination.k8s.io/leases", "create", "take the Lease the first time"},
		{"coordination.k8s.io/leases", "update", "renew and release it"},
		{"core/events", "create", `client-go's leader election records "became leader"`},
		{"core/events", "patch", "the same Event again"},
	}
	// ownershipGrants are needed in the controller's own namespace too: one
	// Lease per tenant names its owner.
	ownershipGrants = []struct{ resource, verb, why string }{
		{"coordination.k8s.io/leases", "get", "read the tenant's Lease at every run"},
		{"coordination.k8s.io/leases", "create", "record a tenant's first owner"},
		{"coordination.k8s.io/leases", "update", "record a new owner (optimistic lock)"},
		{"coordination.k8s.io/leases", "delete", "remove the Lease of an owner deleted with no heir"},
		{"coordination.k8s.io/leases", "list", "cache the tenant Leases, which every shard shares"},
		{"coordination.k8s.io/leases", "watch", "run a policy whose ownership another shard changed, at once"},
	}
	// clusterGrants are cluster-scoped by nature.
	clusterGrants = []struct{ resource, verb, why string }{
		{"authentication.k8s.io/tokenreviews", "create", "authenticate a metrics scraper's token"},
		{"authorization.k8s.io/subjectaccessreviews", "create", "authorize the scraper to GET /metrics"},
	}
	// claimantGrants are namespace-scoped mode's cluster-wide policy reads:
	// the owner of a tenant is the oldest healthy Enforce policy in any
	// namespace.
	claimantGrants = []Grant{
		{Resource: "commerce.tenantpolicy.io/tenantpurchasepolicies", Verb: "get"},
		{Resource: "commerce.tenantpolicy.io/tenantpurchasepolicies", Verb: "list"},
	}
)

// allowList is what a Source may grant its controller.
func allowList(s Source) []Grant {
	var out []Grant
	add := func(ns string, list []struct{ resource, verb, why string }) {
		for _, g := range list {
			out = append(out, Grant{Namespace: ns, Resource: g.resource, Verb: g.verb})
		}
	}
	if s.Watched == nil {
		add("", managerGrants)
	} else {
		for _, ns := range s.Watched {
			add(ns, managerGrants)
		}
		out = append(out, claimantGrants...)
	}
	add(s.Namespace, leaderGrants)
	add(s.Namespace, ownershipGrants)
	add("", clusterGrants)
	slices.SortFunc(out, CompareGrants)
	return slices.Compact(out) // leader election and ownership share lease verbs
}

func TestRBACIsTheAllowList(t *testing.T) {
	for _, s := range Sources {
		t.Run(s.Name, func(t *testing.T) {
			objs := mustRender(t, s)
			got, err := GrantsTo(objs, s.Username())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(allowList(s), got); diff != "" {
				t.Errorf("the controller's permissions differ from the allow-list (-allowed +granted); "+
					"a + line is a permission nobody justified, a - line one the controller needs:\n%s", diff)
			}
		})
	}
}

func TestAllowListCatchesAnExtraVerb(t *testing.T) {
	s := SourceNamed("kustomize build config/default")
	objs := mustRender(t, s)
	for _, o := range Find(objs, "ClusterRole") {
		if o.GetName() != "purchase-policy-manager-role" {
			continue
		}
		rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
		rules = append(rules, map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"list"}})
		o.Object["rules"] = rules
	}
	got, err := GrantsTo(objs, s.Username())
	if err != nil {
		t.Fatal(err)
	}
	extra := Grant{Resource: "core/secrets", Verb: "list"}
	if !slices.Contains(got, extra) || cmp.Equal(allowList(s), got) {
		t.Errorf("an added `list secrets` must show up as a grant outside the allow-list; grants: %v", got)
	}
}

func TestGrantsFollowBindingsOnly(t *testing.T) {
	s := SourceNamed("kustomize build config/default")
	objs := mustRender(t, s)
	got, err := GrantsTo(objs, "system:serviceaccount:other:someone")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a ServiceAccount no binding names must get nothing, got %v", got)
	}
}
