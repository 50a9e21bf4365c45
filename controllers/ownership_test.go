package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

var (
	electT0  = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	electNow = electT0.Add(10 * time.Minute)
)

// claimant is an Enforce policy created at created, with a 15m interval,
// that authenticated then and synced successfully at electNow.
func claimant(name, uid string, created time.Time) v1.TenantPurchasePolicy {
	authenticated, synced := metav1.NewTime(created), metav1.NewTime(electNow)
	return v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns-" + name, UID: types.UID(uid), CreationTimestamp: metav1.NewTime(created), Generation: 1},
		Spec:       v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{Mode: v1.ModeEnforce, Interval: metav1.Duration{Duration: 15 * time.Minute}}},
		Status:     v1.TenantPurchasePolicyStatus{AuthenticatedAt: &authenticated, LastSyncTime: &synced},
	}
}

// policyWith returns p edited.
func policyWith(p v1.TenantPurchasePolicy, edit func(*v1.TenantPurchasePolicy)) v1.TenantPurchasePolicy {
	edit(&p)
	return p
}

// stalledOn sets a Stalled condition with reason for the current generation.
func stalledOn(reason string) func(*v1.TenantPurchasePolicy) {
	return func(p *v1.TenantPurchasePolicy) {
		p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: v1.StalledCondition, Status: metav1.ConditionTrue, Reason: reason, ObservedGeneration: p.Generation})
	}
}

// syncedAt sets status.lastSyncTime (nil: never synced).
func syncedAt(t *time.Time) func(*v1.TenantPurchasePolicy) {
	return func(p *v1.TenantPurchasePolicy) {
		p.Status.LastSyncTime = nil
		if t != nil {
			mt := metav1.NewTime(*t)
			p.Status.LastSyncTime = &mt
		}
	}
}

func TestHealthyOwner(t *testing.T) {
	deleting := metav1.NewTime(electNow)
	justInside, justOutside := electNow.Add(-30*time.Minute), electNow.Add(-30*time.Minute-time.Second)
	cases := map[string]struct {
		reason  string
		p       v1.TenantPurchasePolicy
		renewed *time.Time
		want    bool
	}{
		"synced now":      {"an Enforce policy that just synced owns", claimant("a", "u-1", electT0), nil, true},
		"two intervals":   {"a sync exactly two intervals ago still counts", policyWith(claimant("a", "u-1", electT0), syncedAt(&justInside)), nil, true},
		"stopped syncing": {"a sync older than two intervals does not (its shard is down)", policyWith(claimant("a", "u-1", electT0), syncedAt(&justOutside)), nil, false},
		"never synced":    {"a policy that never authenticated cannot squat", policyWith(claimant("a", "u-1", electT0), syncedAt(nil)), nil, false},
		"renewed by the Lease": {"the sync recorded with the claim counts before the status shows it",
			policyWith(claimant("a", "u-1", electT0), syncedAt(nil)), &electNow, true},
		"suspended": {"a suspended policy does not own", policyWith(claimant("a", "u-1", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true }), nil, false},
		"observe":   {"Observe policies never own", policyWith(claimant("a", "u-1", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve }), nil, false},
		"deleting":  {"a policy being deleted does not own", policyWith(claimant("a", "u-1", electT0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting }), nil, false},
		"401":       {"stalled on 401: its credentials are refused", policyWith(claimant("a", "u-1", electT0), stalledOn(v1.ReasonAuthenticationFailed)), nil, false},
		"403":       {"stalled on 403: it may not write", policyWith(claimant("a", "u-1", electT0), stalledOn(v1.ReasonForbidden)), nil, false},
		"no Secret": {"credentials that cannot be loaded are no better than a 401", policyWith(claimant("a", "u-1", electT0), stalledOn(v1.ReasonSecretNotFound)), nil, false},
		"unknown product": {"a stall a person must fix in the spec does not stop it enforcing the rest",
			policyWith(claimant("a", "u-1", electT0), stalledOn(v1.ReasonUnknownProduct)), nil, true},
		"lost a conflict": {"a policy that lost a conflict is still a healthy candidate",
			policyWith(claimant("a", "u-1", electT0), stalledOn(v1.ReasonConflictLost)), nil, true},
		"tenant ID not in lower case": {"a policy stored before the schema refused upper case writes nothing, so it never owns",
			policyWith(claimant("a", "u-1", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.TenantID = "72F988BF-86F1-41AF-91AB-2D7CD011DB47" }), nil, false},
		"long interval": {"the window is two of the policy's own intervals",
			policyWith(policyWith(claimant("a", "u-1", electT0), syncedAt(&justOutside)), func(p *v1.TenantPurchasePolicy) { p.Spec.Interval.Duration = time.Hour }), nil, true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var renewed *metav1.Time
			if tc.renewed != nil {
				r := metav1.NewTime(*tc.renewed)
				renewed = &r
			}
			if got := healthyOwner(&tc.p, renewed, electNow); got != tc.want {
				t.Errorf("%s: healthyOwner = %v, want %v", tc.reason, got, tc.want)
			}
		})
	}
}

func TestElectOwner(t *testing.T) {
	t1 := electT0.Add(time.Minute)
	deleting := metav1.NewTime(t1)
	stale := electNow.Add(-31 * time.Minute)

	cases := map[string]struct {
		reason string
		others []v1.TenantPurchasePolicy
		self   v1.TenantPurchasePolicy
		claim  *tenantClaim
		// want is the owner's name; "" means no owner.
		want string
	}{
		"alone": {
			reason: "a policy alone on its tenant owns it",
			self:   claimant("new", "u-2", t1),
			want:   "new",
		},
		"oldest wins": {
			reason: "the oldest healthy Enforce policy owns the tenant",
			others: []v1.TenantPurchasePolicy{claimant("old", "u-9", electT0)},
			self:   claimant("new", "u-1", t1),
			want:   "old",
		},
		"self is oldest": {
			reason: "a newer policy does not take the tenant from an older one",
			others: []v1.TenantPurchasePolicy{claimant("new", "u-1", t1)},
			self:   claimant("old", "u-9", electT0),
			want:   "old",
		},
		"tie broken by UID": {
			reason: "same creation second: the smaller UID wins, so every shard elects the same owner",
			others: []v1.TenantPurchasePolicy{claimant("b", "u-2", electT0)},
			self:   claimant("a", "u-3", electT0),
			want:   "b",
		},
		"never synced ignored": {
			reason: "a policy that never authenticated cannot squat a tenant, however old",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("squatter", "u-0", electT0), syncedAt(nil))},
			self:   claimant("real", "u-5", t1),
			want:   "real",
		},
		"self counts as synced": {
			reason: "the running policy has just read the tenant, whatever its listed status says",
			others: []v1.TenantPurchasePolicy{claimant("young", "u-7", t1)},
			self:   policyWith(claimant("self", "u-5", electT0), syncedAt(nil)),
			want:   "self",
		},
		"older suspended owner loses": {
			reason: "a suspended policy cannot keep a tenant from a working one",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("old", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true })},
			self:   claimant("working", "u-5", t1),
			want:   "working",
		},
		"older owner on 403 loses": {
			reason: "an owner that may only read cannot keep a tenant from one that may write",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("old", "u-0", electT0), stalledOn(v1.ReasonForbidden))},
			self:   claimant("working", "u-5", t1),
			want:   "working",
		},
		"older owner stopped syncing loses": {
			reason: "no successful sync for more than two intervals: the tenant goes to a working policy",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("old", "u-0", electT0), syncedAt(&stale))},
			self:   claimant("working", "u-5", t1),
			want:   "working",
		},
		"claim renews a new owner": {
			reason: "an owner whose first status write has not landed yet is healthy by the sync its Lease recorded",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("old", "u-0", electT0), syncedAt(nil))},
			self:   claimant("new", "u-5", t1),
			claim:  &tenantClaim{uid: "u-0", renewed: metav1.NewTime(electNow)},
			want:   "old",
		},
		"self refused keeps out": {
			reason: "a policy whose last write got a 403 does not take the tenant back from a working one",
			others: []v1.TenantPurchasePolicy{claimant("young", "u-7", t1)},
			self:   policyWith(claimant("old", "u-0", electT0), stalledOn(v1.ReasonForbidden)),
			want:   "young",
		},
		"self refused but alone": {
			reason: "with nobody else able to own it, a refused policy keeps trying",
			self:   policyWith(claimant("old", "u-0", electT0), stalledOn(v1.ReasonForbidden)),
			want:   "old",
		},
		"self refused, then the spec changed": {
			reason: "a spec change since the 403 (a person acted) lets it compete again",
			others: []v1.TenantPurchasePolicy{claimant("young", "u-7", t1)},
			self:   policyWith(policyWith(claimant("old", "u-0", electT0), stalledOn(v1.ReasonForbidden)), func(p *v1.TenantPurchasePolicy) { p.Generation = 2 }),
			want:   "old",
		},
		"self refused, then a reconcile was requested": {
			reason: "a reconcile-now request is no fix (tools send it routinely): it stays out",
			others: []v1.TenantPurchasePolicy{claimant("young", "u-7", t1)},
			self: policyWith(policyWith(claimant("old", "u-0", electT0), stalledOn(v1.ReasonForbidden)), func(p *v1.TenantPurchasePolicy) {
				p.Annotations = map[string]string{v1.RequestedAtAnnotation: "2"}
				p.Status.LastHandledReconcileAt = "1"
			}),
			want: "young",
		},
		"observe ignored": {
			reason: "Observe policies never own or conflict",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("watcher", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve })},
			self:   claimant("enforcer", "u-5", t1),
			want:   "enforcer",
		},
		"deleting ignored": {
			reason: "a policy being deleted hands the tenant over at once",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("leaving", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting })},
			self:   claimant("heir", "u-5", t1),
			want:   "heir",
		},
		"self deleting": {
			reason: "a deleting policy never owns, even if it is the oldest",
			others: []v1.TenantPurchasePolicy{claimant("heir", "u-5", t1)},
			self:   policyWith(claimant("leaving", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting }),
			want:   "heir",
		},
		"self deleting, no heir": {
			reason: "nobody healthy to hand over to: no owner (the leaving policy restores)",
			others: []v1.TenantPurchasePolicy{policyWith(claimant("broken", "u-5", t1), stalledOn(v1.ReasonAuthenticationFailed))},
			self:   policyWith(claimant("leaving", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.DeletionTimestamp = &deleting }),
			want:   "",
		},
		"nobody eligible": {
			reason: "an Observe policy alone: no owner",
			self:   policyWith(claimant("watcher", "u-0", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve }),
			want:   "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			self := tc.self.DeepCopy()
			listed := append([]v1.TenantPurchasePolicy{}, tc.others...)
			listed = append(listed, *self.DeepCopy())
			got := ""
			if owner := electOwner(listed, self, tc.claim, electNow); owner != nil {
				got = owner.Name
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nowner (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFirstClaim(t *testing.T) {
	t1 := electT0.Add(time.Minute)
	unauthenticated := func(name, uid string, at time.Time) v1.TenantPurchasePolicy {
		p := claimant(name, uid, at)
		p.Status.AuthenticatedAt, p.Status.LastSyncTime = nil, nil
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
			others:   []v1.TenantPurchasePolicy{unauthenticated("old", "u-9", electT0)},
			self:     unauthenticated("new", "u-1", t1),
			wantWait: true,
		},
		"self already authenticated": {
			reason: "after its first run an unauthenticated older policy cannot squat the tenant",
			others: []v1.TenantPurchasePolicy{unauthenticated("old", "u-9", electT0)},
			self:   claimant("new", "u-1", t1),
		},
		"only newer policies": {
			reason: "the oldest claimant never waits",
			others: []v1.TenantPurchasePolicy{unauthenticated("new", "u-1", t1)},
			self:   unauthenticated("old", "u-9", electT0),
		},
		"older Observe policy": {
			reason: "Observe policies never claim a tenant",
			others: []v1.TenantPurchasePolicy{policyWith(unauthenticated("watcher", "u-9", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Mode = v1.ModeObserve })},
			self:   unauthenticated("new", "u-1", t1),
		},
		"older suspended policy": {
			reason: "a suspended policy will not authenticate: nothing to wait for",
			others: []v1.TenantPurchasePolicy{policyWith(unauthenticated("paused", "u-9", electT0), func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true })},
			self:   unauthenticated("new", "u-1", t1),
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

func TestTenantLeaseName(t *testing.T) {
	upper, lower := tenantLeaseName("72F988BF-86F1-41AF-91AB-2D7CD011DB47"), tenantLeaseName("72f988bf-86f1-41af-91ab-2d7cd011db47")
	if upper != lower {
		t.Errorf("two spellings of one tenant must share one Lease: %q and %q", upper, lower)
	}
	if want := "tenant-72f988bf-86f1-41af-91ab-2d7cd011db47"; lower != want {
		t.Errorf("Lease name %q, want %q", lower, want)
	}
}

func TestClaimRoundTrip(t *testing.T) {
	owner := claimant("owner", "u-1", electT0)
	lease := &coordinationv1.Lease{}
	fillClaim(lease, "72F988BF-86F1-41AF-91AB-2D7CD011DB47", &owner, &owner, electNow)
	got := claimOf(lease)
	want := &tenantClaim{lease: lease, holder: types.NamespacedName{Namespace: "ns-owner", Name: "owner"}, uid: "u-1",
		created: metav1.NewTime(electT0), renewed: metav1.NewTime(electNow)}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(tenantClaim{})); diff != "" {
		t.Errorf("a Lease must read back as the claim written (-want +got):\n%s", diff)
	}
	if d := *lease.Spec.LeaseDurationSeconds; d != 1800 {
		t.Errorf("leaseDurationSeconds = %d, want two 15m intervals (1800)", d)
	}
	if l := lease.Labels[leaseTenantLabel]; l != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
		t.Errorf("tenant label %q, want the lower-case tenant ID", l)
	}
	next := claimant("next", "u-2", electT0)
	fillClaim(lease, "72f988bf-86f1-41af-91ab-2d7cd011db47", &next, &owner, electNow)
	if n := *lease.Spec.LeaseTransitions; n != 1 {
		t.Errorf("leaseTransitions = %d after one handover, want 1", n)
	}
	if by := claimOf(lease).namedBy; by != "ns-owner/owner" {
		t.Errorf("an heir's claim names the leaving owner that wrote it: namedBy %q, want ns-owner/owner", by)
	}
	fillClaim(lease, "72f988bf-86f1-41af-91ab-2d7cd011db47", &next, &next, electNow)
	if by := claimOf(lease).namedBy; by != "" {
		t.Errorf("a claim the owner wrote in its own run names nobody: namedBy %q", by)
	}
	if claimOf(&coordinationv1.Lease{}).heldBy("") {
		t.Error("a Lease without a holder is held by nobody")
	}
}
