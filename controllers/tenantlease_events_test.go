package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// TestTenantLeaseEvents: a tenant Lease changing hands runs, if this replica
// holds it (a policy of another shard is not in its cache), the one policy
// it concerns besides the one that wrote it: the holder an older policy took
// the tenant back from, or the heir a leaving owner named. Its deletion runs
// every policy of the tenant; a first claim, a write that keeps the holder
// or a takeover from an owner that was not healthy runs nobody.
func TestTenantLeaseEvents(t *testing.T) {
	older := flowPolicy("older", "uid-older", electT0)
	newer := flowPolicy("newer", "uid-newer", electT0.Add(time.Second))
	third := flowPolicy("third", "uid-third", electT0.Add(2*time.Second))
	otherTenant := flowPolicy("other", "uid-other", electT0)
	otherTenant.Spec.TenantID = "0b2c3d4e-0000-4000-8000-000000000000"
	c, _ := ownershipWorld(t, []client.Object{older, newer, third, otherTenant}, 0)
	r := &TenantPurchasePolicyReconciler{Client: c, APIReader: c, LeaseNamespace: flowLeaseNS}

	heldByNewer, heldByOlder := leaseFor(newer), leaseFor(older)
	heirNewer := leaseFor(older)
	fillClaim(heirNewer, flowTenant, newer, older, electT0) // older, leaving, names newer
	renewed := heldByOlder.DeepCopy()
	renewed.Spec.RenewTime = &metav1.MicroTime{Time: electT0.Add(time.Hour)}
	renewed.ResourceVersion = "2"
	far := heldByNewer.DeepCopy() // held by a newer policy in another shard
	far.Spec.HolderIdentity = ptr.To("ns-shard-b/far")
	heirFar := heirNewer.DeepCopy()
	heirFar.Spec.HolderIdentity = ptr.To("ns-shard-b/far")

	update := func(before, after *coordinationv1.Lease) func(handlerOf, queue) {
		return func(h handlerOf, q queue) {
			h.Update(context.Background(), event.UpdateEvent{ObjectOld: before, ObjectNew: after}, q)
		}
	}
	for _, tc := range []struct {
		name string
		fire func(handlerOf, queue)
		want []string
	}{
		{"an older policy takes the tenant back: the newer learns it lost", update(heldByNewer, heldByOlder), []string{"ns-newer/newer"}},
		{"a newer policy takes the tenant from an owner that was not healthy", update(heldByOlder, heldByNewer), nil},
		{"a leaving owner names its heir", update(heldByOlder, heirNewer), []string{"ns-newer/newer"}},
		{"the heir is in another shard", update(heldByOlder, heirFar), nil},
		{"the loser is in another shard", update(far, heldByOlder), nil},
		{"written without changing hands", update(heldByOlder, renewed), nil},
		{"a tenant's first claim, or a replica's start", func(h handlerOf, q queue) {
			h.Create(context.Background(), event.CreateEvent{Object: heldByOlder}, q)
		}, nil},
		{"the owner left with no heir", func(h handlerOf, q queue) {
			h.Delete(context.Background(), event.DeleteEvent{Object: heldByOlder}, q)
		}, []string{"ns-newer/newer", "ns-older/older", "ns-third/third"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
			defer q.ShutDown()
			tc.fire(r.tenantLeaseEvents(), q)
			var got []string
			for q.Len() > 0 {
				req, _ := q.Get()
				got = append(got, req.String())
				q.Done(req)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("queued %v, want %v", got, tc.want)
			}
		})
	}
}

type (
	queue     = workqueue.TypedRateLimitingInterface[reconcile.Request]
	handlerOf = interface {
		Create(context.Context, event.CreateEvent, queue)
		Update(context.Context, event.UpdateEvent, queue)
		Delete(context.Context, event.DeleteEvent, queue)
	}
)

// TestIsTenantLease: only the tenant Leases of the Lease namespace, not the
// leader-election Lease beside them nor a tenant Lease of another namespace.
func TestIsTenantLease(t *testing.T) {
	r := &TenantPurchasePolicyReconciler{LeaseNamespace: flowLeaseNS}
	tenant := leaseFor(flowPolicy("older", "uid-older", electT0))
	leader := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: flowLeaseNS, Name: "purchase-policy-controller.tenantpolicy.io"}}
	elsewhere := tenant.DeepCopy()
	elsewhere.Namespace = "another"
	for lease, want := range map[*coordinationv1.Lease]bool{tenant: true, leader: false, elsewhere: false} {
		if got := r.isTenantLease(lease); got != want {
			t.Errorf("isTenantLease(%s/%s) = %v, want %v", lease.Namespace, lease.Name, got, want)
		}
	}
}
