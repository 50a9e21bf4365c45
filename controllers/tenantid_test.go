package controllers

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const (
	tenantLower = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	tenantMixed = "72F988BF-86f1-41AF-91ab-2D7CD011DB47"
)

// TestTenantIDCase: 72F988BF-… and 72f988bf-… are one Entra tenant. Every
// key the controller builds (the index, the tenant the clients are bound to,
// the credential material behind the token cache) uses the lower-case
// spelling, and a policy stored with another spelling (before the schema
// refused it) writes nothing, so two policies differing only in case never
// both own the tenant.
func TestTenantIDCase(t *testing.T) {
	t.Run("keys are lower case", func(t *testing.T) {
		p := testPolicy("legacy", tenantMixed, time.Now())
		if got := indexTenantID(p); !cmp.Equal(got, []string{tenantLower}) {
			t.Errorf("the tenantID index of %s is %v, want [%s]", tenantMixed, got, tenantLower)
		}
		fc := newFakeCluster(t, nil, interceptor.Funcs{}, p)
		s := &syncState{policy: p, base: p.DeepCopy(), now: fc.now}
		if err := fc.r.loadCredentials(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(fc.api.asked, []string{tenantLower}) {
			t.Errorf("the licensing client (its gate) was bound to %v, want [%s]", fc.api.asked, tenantLower)
		}
		if len(fc.api.materials) != 1 || fc.api.materials[0].TenantID != tenantLower {
			t.Errorf("the token cache is keyed by the material's tenant %+v, want %s", fc.api.materials, tenantLower)
		}
	})

	t.Run("two policies differing only in case", func(t *testing.T) {
		created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		legacy := testPolicy("legacy", tenantMixed, created)
		legacy.Spec.Default = v1.RulePolicy(v1.PolicyEnabled)
		newer := testPolicy("newer", tenantLower, created.Add(time.Hour))
		tenant := newFakeTenant(map[string]string{"A": "Enabled", "B": "Enabled"})
		fc := newFakeCluster(t, map[string]*fakeTenant{tenantLower: tenant}, interceptor.Funcs{}, legacy, newer)

		for range 2 { // the second run of each sees the other's status
			for _, p := range []*v1.TenantPurchasePolicy{legacy, newer} {
				if _, err := fc.reconcile(p); err != nil {
					t.Fatalf("%s: %v", p.Name, err)
				}
			}
		}
		got := fc.get(legacy)
		if c := meta.FindStatusCondition(got.Status.Conditions, v1.StalledCondition); c == nil || c.Reason != v1.ReasonTenantIDNotLowerCase || !strings.Contains(c.Message, "recreate it with tenantID "+tenantLower) {
			t.Errorf("the policy spelled %s: Stalled %+v, want reason %s naming the lower-case ID", tenantMixed, c, v1.ReasonTenantIDNotLowerCase)
		}
		if got := fc.get(newer); !meta.IsStatusConditionTrue(got.Status.Conditions, v1.ReadyCondition) {
			t.Errorf("the lower-case policy must own the tenant and converge: %+v", got.Status.Conditions)
		}
		values, writes := tenant.snapshot()
		sort.Strings(writes) // sent at once
		if want := map[string]string{"A": "Disabled", "B": "Disabled"}; !cmp.Equal(values, want) {
			t.Errorf("tenant %v, want only the owner's values %v", values, want)
		}
		if want := []string{"A=Disabled", "B=Disabled"}; !cmp.Equal(writes, want) {
			t.Errorf("writes %v, want only the owner's %v (no fight)", writes, want)
		}
		for _, asked := range fc.api.asked {
			if asked != tenantLower {
				t.Errorf("a client was bound to %q", asked)
			}
		}
	})
}
