package controllers

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

const (
	flowTenant    = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	flowLeaseNS   = "controller"
	flowLeaseName = "tenant-" + flowTenant
)

// apiCalls counts what resolveOwnership asked the API server for.
type apiCalls struct{ gets, lists, creates, updates int }

// ownershipWorld is a fake API server holding policies and the tenant's
// Lease; updateConflicts makes that many Lease updates fail with a conflict
// first, as if another shard had written in between.
func ownershipWorld(t *testing.T, objs []client.Object, updateConflicts int) (client.Client, *apiCalls) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	calls := &apiCalls{}
	base := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&v1.TenantPurchasePolicy{}, TenantIDField, func(o client.Object) []string {
			return []string{o.(*v1.TenantPurchasePolicy).Spec.TenantID}
		}).Build()
	c := interceptor.NewClient(base, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			calls.gets++
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			calls.lists++
			return c.List(ctx, list, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			calls.creates++
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			calls.updates++
			if updateConflicts > 0 {
				updateConflicts--
				return apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, obj.GetName(), nil)
			}
			return c.Update(ctx, obj, opts...)
		},
	})
	return c, calls
}

// flowPolicy is claimant with the flow's tenant.
func flowPolicy(name, uid string, created time.Time, edits ...func(*v1.TenantPurchasePolicy)) *v1.TenantPurchasePolicy {
	p := claimant(name, uid, created)
	p.Spec.TenantID = flowTenant
	for _, e := range edits {
		e(&p)
	}
	return &p
}

// leaseFor is the tenant's Lease naming holder.
func leaseFor(holder *v1.TenantPurchasePolicy) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: flowLeaseNS, Name: flowLeaseName}}
	fillClaim(l, flowTenant, holder, holder, electT0)
	return l
}

func TestResolveOwnershipCost(t *testing.T) {
	t1 := electT0.Add(time.Minute)
	self := flowPolicy("self", "u-5", t1)
	older := flowPolicy("older", "u-1", electT0)
	newer := flowPolicy("newer", "u-9", t1.Add(time.Minute))
	suspendedOlder := flowPolicy("older", "u-1", electT0, func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true })
	refusedOlder := flowPolicy("older", "u-1", electT0, stalledOn(v1.ReasonForbidden))
	gone := flowPolicy("gone", "u-0", electT0)
	leaving := flowPolicy("self", "u-5", t1, func(p *v1.TenantPurchasePolicy) {
		now := metav1.NewTime(electNow)
		p.DeletionTimestamp, p.Finalizers = &now, []string{v1.Finalizer}
	})

	cases := map[string]struct {
		reason    string
		self      *v1.TenantPurchasePolicy
		others    []*v1.TenantPurchasePolicy
		lease     *coordinationv1.Lease
		conflicts int
		// wantHolder is the Lease's holder afterwards ("" = no Lease);
		// wantLost the owner named when self lost ("" = self may write).
		wantHolder, wantLost string
		want                 apiCalls
	}{
		"owner, steady state": {
			reason: "the owner reads its Lease and nothing else",
			self:   self, others: []*v1.TenantPurchasePolicy{newer}, lease: leaseFor(self),
			wantHolder: "self", want: apiCalls{gets: 1},
		},
		"loser, steady state": {
			reason: "a newer policy reads the Lease and its healthy holder, and loses without a List",
			self:   self, others: []*v1.TenantPurchasePolicy{older}, lease: leaseFor(older),
			wantHolder: "older", wantLost: "ns-older/older", want: apiCalls{gets: 2},
		},
		"first policy of a tenant": {
			reason:     "no Lease yet: one List, then the Lease is created",
			self:       self,
			wantHolder: "self", want: apiCalls{gets: 1, lists: 1, creates: 1},
		},
		"first policy, an older one already syncing": {
			reason: "no Lease yet but an older healthy policy (e.g. before an upgrade): the List finds it and the Lease names it",
			self:   self, others: []*v1.TenantPurchasePolicy{older},
			wantHolder: "older", wantLost: "ns-older/older", want: apiCalls{gets: 1, lists: 1, creates: 1},
		},
		"holder suspended": {
			reason: "an older suspended owner loses to a working policy",
			self:   self, others: []*v1.TenantPurchasePolicy{suspendedOlder}, lease: leaseFor(suspendedOlder),
			wantHolder: "self", want: apiCalls{gets: 2, lists: 1, updates: 1},
		},
		"holder refused with 403": {
			reason: "an older owner stalled on 403 loses to a working policy",
			self:   self, others: []*v1.TenantPurchasePolicy{refusedOlder}, lease: leaseFor(refusedOlder),
			wantHolder: "self", want: apiCalls{gets: 2, lists: 1, updates: 1},
		},
		"holder gone": {
			reason: "the Lease names a policy that no longer exists: the next one takes over",
			self:   self, lease: leaseFor(gone),
			wantHolder: "self", want: apiCalls{gets: 2, lists: 1, updates: 1},
		},
		"older policy claims": {
			reason: "an older healthy policy takes the tenant from a newer holder",
			self:   self, others: []*v1.TenantPurchasePolicy{newer}, lease: leaseFor(newer),
			wantHolder: "self", want: apiCalls{gets: 2, lists: 1, updates: 1},
		},
		"takeover races another shard": {
			reason: "a Lease update that loses a race is retried on fresh data",
			self:   self, others: []*v1.TenantPurchasePolicy{suspendedOlder}, lease: leaseFor(suspendedOlder), conflicts: 1,
			wantHolder: "self", want: apiCalls{gets: 4, lists: 2, updates: 2},
		},
		"owner leaving hands over": {
			reason: "a deleting owner names its heir in the Lease and does not restore",
			self:   leaving, others: []*v1.TenantPurchasePolicy{newer}, lease: leaseFor(leaving),
			wantHolder: "newer", wantLost: "ns-newer/newer", want: apiCalls{gets: 1, lists: 1, updates: 1},
		},
		"owner leaving alone": {
			reason: "a deleting owner with no heir keeps the Lease (it goes with the finalizer) and restores",
			self:   leaving, lease: leaseFor(leaving),
			wantHolder: "self", want: apiCalls{gets: 1, lists: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{tc.self.DeepCopy()}
			for _, o := range tc.others {
				objs = append(objs, o.DeepCopy())
			}
			if tc.lease != nil {
				objs = append(objs, tc.lease.DeepCopy())
			}
			c, calls := ownershipWorld(t, objs, tc.conflicts)
			r := &TenantPurchasePolicyReconciler{Client: c, APIReader: c, LeaseNamespace: flowLeaseNS}
			s := &syncState{policy: tc.self.DeepCopy(), base: tc.self.DeepCopy(), now: electNow, deleting: !tc.self.DeletionTimestamp.IsZero()}

			err := r.resolveOwnership(context.Background(), s)
			made := *calls

			lost := ""
			if st, ok := asStalled(err); ok && st.reason == v1.ReasonConflictLost {
				lost = s.conflictOwner
			} else if err != nil {
				t.Fatalf("%s: resolveOwnership: %v", tc.reason, err)
			}
			if lost != tc.wantLost {
				t.Errorf("%s: lost to %q, want %q", tc.reason, lost, tc.wantLost)
			}
			if got := holderOf(t, c); got != tc.wantHolder {
				t.Errorf("%s: Lease holder %q, want %q", tc.reason, got, tc.wantHolder)
			}
			if made != tc.want {
				t.Errorf("%s: API calls %+v, want %+v", tc.reason, made, tc.want)
			}
		})
	}
}

// holderOf returns the name of the tenant Lease's holder ("" when none).
func holderOf(t *testing.T, c client.Client) string {
	t.Helper()
	var l coordinationv1.Lease
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: flowLeaseNS, Name: flowLeaseName}, &l); err != nil {
		if apierrors.IsNotFound(err) {
			return ""
		}
		t.Fatal(err)
	}
	return claimOf(&l).holder.Name
}

func TestResolveOwnershipRefusedPolicyStaysRefused(t *testing.T) {
	// The older policy's last write got a 403; a newer one took over.
	t1 := electT0.Add(time.Minute)
	self := flowPolicy("old", "u-1", electT0, stalledOn(v1.ReasonForbidden))
	holder := flowPolicy("new", "u-5", t1)
	c, _ := ownershipWorld(t, []client.Object{self.DeepCopy(), holder.DeepCopy(), leaseFor(holder)}, 0)
	r := &TenantPurchasePolicyReconciler{Client: c, APIReader: c, LeaseNamespace: flowLeaseNS}
	s := &syncState{policy: self.DeepCopy(), base: self.DeepCopy(), now: electNow}

	err := r.resolveOwnership(context.Background(), s)

	st, ok := asStalled(err)
	if !ok || st.reason != v1.ReasonForbidden {
		t.Fatalf("a refused policy must stay Stalled Forbidden (not take the tenant back, not flip to ConflictLost): got %v", err)
	}
	if s.conflictOwner != "ns-new/new" || holderOf(t, c) != "new" {
		t.Errorf("the working policy keeps the tenant: conflictOwner %q, holder %q", s.conflictOwner, holderOf(t, c))
	}
}

func TestReleaseClaim(t *testing.T) {
	owner := flowPolicy("owner", "u-1", electT0)
	other := flowPolicy("other", "u-2", electT0)
	for name, tc := range map[string]struct {
		holder     *v1.TenantPurchasePolicy
		wantHolder string
	}{
		"held by the leaving policy": {owner, ""},
		"held by another":            {other, "other"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := ownershipWorld(t, []client.Object{leaseFor(tc.holder)}, 0)
			r := &TenantPurchasePolicyReconciler{Client: c, APIReader: c, LeaseNamespace: flowLeaseNS}
			if err := r.releaseClaim(context.Background(), owner); err != nil {
				t.Fatal(err)
			}
			if got := holderOf(t, c); got != tc.wantHolder {
				t.Errorf("after the owner left: holder %q, want %q", got, tc.wantHolder)
			}
		})
	}
}
