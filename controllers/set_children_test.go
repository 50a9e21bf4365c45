package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

func TestChildNames(t *testing.T) {
	// tA2 shares tA's first 8 characters.
	const tA2 = "aaaaaaaa-9999-4000-8000-000000000009"
	listed := func(id, name string) setTenant { return setTenant{tenantID: id, name: name, listed: true} }
	found := func(id string) setTenant { return setTenant{tenantID: id} }
	cases := map[string]struct {
		tenants    []setTenant
		owned      map[string]string
		foreign    []string
		want       map[string]string
		untaken    []string
		collisions int
	}{
		"a name, or the first 8 characters of the tenant ID": {
			tenants: []setTenant{listed(tA, "contoso"), found(tB)},
			want:    map[string]string{tA: "s-contoso", tB: "s-bbbbbbbb"},
		},
		"two tenants with the same first 8 characters: the first by tenant ID keeps it": {
			tenants:    []setTenant{found(tA), found(tA2)},
			want:       map[string]string{tA: "s-aaaaaaaa", tA2: "s-" + tA2},
			collisions: 1,
		},
		"an explicit name wins over a derived one": {
			tenants:    []setTenant{found(tA), listed(tB, "aaaaaaaa")},
			want:       map[string]string{tB: "s-aaaaaaaa", tA: "s-" + tA},
			collisions: 1,
		},
		"a name held by a policy the set does not own falls back to the tenant ID": {
			tenants:    []setTenant{found(tA)},
			foreign:    []string{"s-aaaaaaaa"},
			want:       map[string]string{tA: "s-" + tA},
			collisions: 1,
		},
		"both names held: no child": {
			tenants: []setTenant{found(tA)},
			foreign: []string{"s-aaaaaaaa", "s-" + tA},
			want:    map[string]string{},
			untaken: []string{"s-aaaaaaaa"},
		},
		"an existing child keeps its fallback name when the preferred one frees up": {
			tenants: []setTenant{found(tA)},
			owned:   map[string]string{"s-" + tA: tA},
			want:    map[string]string{tA: "s-" + tA},
		},
		"a renamed tenant gets its new name (the old child is pruned)": {
			tenants: []setTenant{listed(tA, "new")},
			owned:   map[string]string{"s-old": tA},
			want:    map[string]string{tA: "s-new"},
		},
		"a child that stays another tenant's holds its name": {
			tenants:    []setTenant{listed(tA, "x"), listed(tB, "y")},
			owned:      map[string]string{"s-x": tB},
			want:       map[string]string{tA: "s-" + tA, tB: "s-y"},
			collisions: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := childNames{set: "s", owned: map[string]string{}, foreign: map[string]bool{}}
			for k, v := range tc.owned {
				n.owned[k] = v
			}
			for _, f := range tc.foreign {
				n.foreign[f] = true
			}
			a := n.assign(tc.tenants)
			if diff := cmp.Diff(tc.want, a.names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			var untaken []string
			for _, u := range a.untaken {
				untaken = append(untaken, u.Name)
				if u.Reason != v1.ReasonNameTaken {
					t.Errorf("untaken %s has reason %s", u.Name, u.Reason)
				}
			}
			if diff := cmp.Diff(tc.untaken, untaken); diff != "" {
				t.Errorf("untaken (-want +got):\n%s", diff)
			}
			if len(a.collisions) != tc.collisions {
				t.Errorf("collisions %v, want %d", a.collisions, tc.collisions)
			}
		})
	}
}

func TestSetTenantsExcludesOnlyDiscovered(t *testing.T) {
	set := &v1.TenantPurchasePolicySet{
		Spec: v1.TenantPurchasePolicySetSpec{
			Tenants: []v1.SetTenant{{TenantID: tC, Name: "listed"}, {TenantID: tA}},
			Discovery: &v1.SetDiscovery{DelegatedAdminCustomers: &v1.DelegatedAdminCustomersDiscovery{
				Exclude: []string{tB, tA}}},
		},
		Status: v1.TenantPurchasePolicySetStatus{Discovery: &v1.DiscoveryStatus{Tenants: []v1.DiscoveredTenant{
			{TenantID: tA}, {TenantID: tB}, {TenantID: tC}, {TenantID: tD, Missed: 1}}}},
	}
	got := setTenants(set)
	want := []setTenant{{tenantID: tA, listed: true}, {tenantID: tC, name: "listed", listed: true}, {tenantID: tD}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(setTenant{})); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
}

func TestChildMatches(t *testing.T) {
	set := &v1.TenantPurchasePolicySet{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "set-uid"},
		Spec: v1.TenantPurchasePolicySetSpec{ChildLabels: map[string]v1.LabelValue{"shard": "a"}}}
	d := desiredChild{name: "s-contoso", tenantID: tA, spec: v1.TenantPurchasePolicySpec{TenantID: tA,
		TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled)}}}
	child := func(edit func(*v1.TenantPurchasePolicy)) *v1.TenantPurchasePolicy {
		c := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: d.name, Namespace: "ns",
			Labels:          map[string]string{v1.SetLabel: "s", "shard": "a", "team": "x"},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(set, v1.GroupVersion.WithKind("TenantPurchasePolicySet"))}},
			Spec: *d.spec.DeepCopy()}
		edit(c)
		return c
	}
	cases := map[string]struct {
		child *v1.TenantPurchasePolicy
		want  bool
	}{
		"as desired, with a label of someone else": {child: child(func(*v1.TenantPurchasePolicy) {}), want: true},
		"mode edited by hand":                      {child: child(func(c *v1.TenantPurchasePolicy) { c.Spec.Mode = v1.ModeObserve })},
		"suspended by hand":                        {child: child(func(c *v1.TenantPurchasePolicy) { c.Spec.Suspend = true })},
		"a childLabels label removed":              {child: child(func(c *v1.TenantPurchasePolicy) { delete(c.Labels, "shard") })},
		"the set label changed":                    {child: child(func(c *v1.TenantPurchasePolicy) { c.Labels[v1.SetLabel] = "other" })},
		"a label the set applied and no longer sets": {child: child(func(c *v1.TenantPurchasePolicy) {
			c.Annotations = map[string]string{v1.SetLabelsAnnotation: v1.SetLabel + ",old,shard"}
		})},
		"the labels the set applied, still wanted": {child: child(func(c *v1.TenantPurchasePolicy) {
			c.Annotations = map[string]string{v1.SetLabelsAnnotation: v1.SetLabel + ",shard"}
		}), want: true},
		"owned by another controller": {child: child(func(c *v1.TenantPurchasePolicy) { c.OwnerReferences[0].UID = "other" })},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := childMatches(tc.child, set, d); got != tc.want {
				t.Errorf("childMatches = %t, want %t", got, tc.want)
			}
		})
	}
}

// The apply request holds what the set decides and nothing else: no status
// (the API server would ignore it, but the set would claim it), suspend
// even when false (so a hand-set suspend is taken back).
func TestChildApplyObject(t *testing.T) {
	set := &v1.TenantPurchasePolicySet{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "set-uid"}}
	d := desiredChild{name: "s-contoso", tenantID: tA, spec: v1.TenantPurchasePolicySpec{TenantID: tA,
		TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled)}}}
	u, err := childApplyObject(set, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.Object["status"]; ok {
		t.Error("the apply request carries status")
	}
	if v, found, _ := unstructured.NestedBool(u.Object, "spec", "suspend"); !found || v {
		t.Errorf("spec.suspend = %t (sent: %t), want false sent", v, found)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "creationTimestamp"); found {
		t.Error("the apply request carries creationTimestamp")
	}
	ref := u.GetOwnerReferences()
	if len(ref) != 1 || !ptr.Deref(ref[0].Controller, false) || ref[0].UID != "set-uid" || ref[0].Kind != "TenantPurchasePolicySet" {
		t.Errorf("owner references %+v", ref)
	}
	if u.GetLabels()[v1.SetLabel] != "s" {
		t.Errorf("labels %v", u.GetLabels())
	}
	if got := u.GetAnnotations()[v1.SetLabelsAnnotation]; got != v1.SetLabel {
		t.Errorf("the child names the labels the set applied in %s: %q, want %q", v1.SetLabelsAnnotation, got, v1.SetLabel)
	}
}
