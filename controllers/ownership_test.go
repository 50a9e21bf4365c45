package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// claimant is an Enforce policy created at created that has authenticated.
func claimant(name, uid string, created time.Time) v1.TenantPurchasePolicy {
	authenticated := metav1.NewTime(created)
	return v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns-" + name, UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce}},
		Status:     v1.TenantPurchasePolicyStatus{AuthenticatedAt: &authenticated},
	}
}

func TestElectOwner(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	with := func(p v1.TenantPurchasePolicy, edit func(*v1.TenantPurchasePolicy)) v1.TenantPurchasePolicy {
		edit(&p)
		return p
	}
	deleting := metav1.NewTime(t1)

	cases := map[string]struct {
		reason string
		others []v1.TenantPurchasePolicy
		self   v1.TenantPurchasePolicy
		// want is the owner's name; "" means no owner.
		want string
	}{
		"alone": {
			reason: "a policy alone on its tenant owns it",
			self:   claimant("new", "u-2", t1),
			want:   "new",
		},
		"oldest wins": {
			reason: "the oldest authenticated Enforce policy owns the tenant",
			others: []v1.TenantPurchasePolicy{claimant("old", "u-9", t0)},
			self:   claimant("new", "u-1", t1),
			want:   "old",
		},
		"self is oldest": {
			reason: "a newer policy does not take the tenant from an older one",
			others: []v1.TenantPurchasePolicy{claimant("new", "u-1", t1)},
			self:   claimant("old", "u-9", t0),
			want:   "old",
		},
		"tie broken by UID": {
			reason: "same creation second: the smaller UID wins, so every shard elects the same owner",
			others: []v1.TenantPurchasePolicy{claimant("b", "u-2", t0)},
			self:   claimant("a", "u-3", t0),
			want:   "b",
		},
		"unauthenticated ignored": {
			reason: "a policy that never authenticated cannot squat a tenant, however old",
			others: []v1.TenantPurchasePolicy{with(claimant("squatter", "u-0", t0), func(p *v1.TenantPurchasePolicy) { p.Status.AuthenticatedAt = nil })},
			self:   claimant("real", "u-5", t1),
			want:   "real",
		},
		"self counts as authenticated": {
			reason: "the listed copy of self may predate its first authentication; the in-memory self is used",
			others: []v1.TenantPurchasePolicy{with(claimant("self", "u-5", t0), func(p *v1.TenantPurchasePolicy) { p.Status.AuthenticatedAt = nil })},
			self:   claimant("self", "u-5", t0),
			want:   "self",
		},
		"observe ignored": {
			reason: "Observe policies never own or conflict",
			others: []v1.TenantPurchasePolicy{with(claimant("watcher", "u-0", t0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve })},
			self:   claimant("enforcer", "u-5", t1),
			want:   "enforcer",
		},
		"deleting ignored": {
			reason: "a policy being deleted hands the tenant over at once",
			others: []v1.TenantPurchasePolicy{with(claimant("leaving", "u-0", t0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting })},
			self:   claimant("heir", "u-5", t1),
			want:   "heir",
		},
		"self deleting": {
			reason: "a deleting policy never owns, even if it is the oldest",
			others: []v1.TenantPurchasePolicy{claimant("heir", "u-5", t1)},
			self:   with(claimant("leaving", "u-0", t0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting }),
			want:   "heir",
		},
		"nobody eligible": {
			reason: "an Observe policy alone: no owner",
			self:   with(claimant("watcher", "u-0", t0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve }),
			want:   "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			self := tc.self.DeepCopy()
			listed := append([]v1.TenantPurchasePolicy{}, tc.others...)
			if !containsUID(listed, self.UID) {
				listed = append(listed, *self.DeepCopy())
			}
			got := ""
			if owner := electOwner(listed, self); owner != nil {
				got = owner.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nowner (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func containsUID(list []v1.TenantPurchasePolicy, uid types.UID) bool {
	for _, p := range list {
		if p.UID == uid {
			return true
		}
	}
	return false
}

func TestFirstClaim(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Minute)
	unauthenticated := func(name, uid string, at time.Time) v1.TenantPurchasePolicy {
		p := claimant(name, uid, at)
		p.Status.AuthenticatedAt = nil
		return p
	}
	cases := map[string]struct {
		reason   string
		others   []v1.TenantPurchasePolicy
		self     v1.TenantPurchasePolicy
		wantWait bool
	}{
		"older policy in its first run too": {
			reason:   "two new policies cannot see each other's authentication: the newer waits one short run",
			others:   []v1.TenantPurchasePolicy{unauthenticated("old", "u-9", t0)},
			self:     unauthenticated("new", "u-1", t1),
			wantWait: true,
		},
		"self already authenticated": {
			reason: "after its first run an unauthenticated older policy cannot squat the tenant",
			others: []v1.TenantPurchasePolicy{unauthenticated("old", "u-9", t0)},
			self:   claimant("new", "u-1", t1),
		},
		"only newer policies": {
			reason: "the oldest claimant never waits",
			others: []v1.TenantPurchasePolicy{unauthenticated("new", "u-1", t1)},
			self:   unauthenticated("old", "u-9", t0),
		},
		"older Observe policy": {
			reason: "Observe policies never claim a tenant",
			others: []v1.TenantPurchasePolicy{func() v1.TenantPurchasePolicy {
				p := unauthenticated("watcher", "u-9", t0)
				p.Spec.Mode = v1.ModeObserve
				return p
			}()},
			self: unauthenticated("new", "u-1", t1),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			self := tc.self
			err := firstClaim(append(tc.others, self), &self)
			w, waits := asWait(err)
			if waits != tc.wantWait || (waits && w.reason != v1.ReasonWaitingForOlderPolicy) {
				t.Errorf("%s: got %v", tc.reason, err)
			}
		})
	}
}
