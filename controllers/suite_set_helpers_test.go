package controllers_test

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// setCoalesce is the set controller's coalescing window in the suite:
// short, so specs settle fast.
const setCoalesce = 200 * time.Millisecond

// newSetReconciler builds the set reconciler beside r, as cmd/main.go does.
func newSetReconciler(mgr ctrl.Manager, r *controllers.TenantPurchasePolicyReconciler) *controllers.TenantPurchasePolicySetReconciler {
	GinkgoHelper()
	sr, err := controllers.NewSetReconciler(mgr, r)
	Expect(err).NotTo(HaveOccurred())
	sr.Coalesce = setCoalesce
	return sr
}

// partner is a simulated Microsoft partner: a test tenant whose app is
// multi-tenant (consented in every customer the partner adds), with its
// Secret "app" in the partner's namespace.
type partner struct{ testTenant }

// newPartner creates a partner whose app may list its customers (or has
// the given permissions).
func newPartner(perms ...string) partner {
	GinkgoHelper()
	if len(perms) == 0 {
		perms = []string{m365sim.PermDelegatedAdminRelationshipRead}
	}
	return partner{newTenant(perms...)}
}

// customer creates a customer tenant (every product Enabled) where the
// partner's app is consented, with an admin relationship to the partner
// when related.
func (p partner) customer(related bool) string {
	GinkgoHelper()
	id := uuid.NewString()
	_, err := sim.AddTenant(m365sim.TenantConfig{ID: id, Name: "Customer " + id[:8]})
	Expect(err).NotTo(HaveOccurred())
	Expect(sim.RegisterApp(id, m365sim.App{ClientID: p.ClientID, Secret: p.Secret, Permissions: m365sim.AllPermissions})).To(Succeed())
	if related {
		p.relate(id)
	}
	return id
}

// customers creates n related customers.
func (p partner) customers(n int) []string {
	GinkgoHelper()
	out := make([]string, 0, n)
	for range n {
		out = append(out, p.customer(true))
	}
	return out
}

func (p partner) relate(customerID string) {
	GinkgoHelper()
	_, err := sim.AddCustomerRelationship(p.ID, m365sim.CustomerRequest{TenantID: customerID})
	Expect(err).NotTo(HaveOccurred())
}

// unrelate ends every relationship with the customer: it leaves the list.
func (p partner) unrelate(customerID string) {
	GinkgoHelper()
	_, err := sim.RemoveCustomer(p.ID, customerID)
	Expect(err).NotTo(HaveOccurred())
}

// discoveries counts the partner's customer listings (pages).
func (p partner) discoveries() int {
	return sim.Requests(p.ID).Counts["graph GET delegatedAdminCustomers"]
}

// partnerSet returns a set of the partner's namespace: Enforce, default
// Disabled, a Copilot rule, a 1h interval, tracking off, discovery of the
// partner's customers with the template's auth, and the listed tenants.
func (p partner) set(name string, listed ...v1.SetTenant) *v1.TenantPurchasePolicySet {
	return &v1.TenantPurchasePolicySet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace},
		Spec: v1.TenantPurchasePolicySetSpec{
			Template: v1.PolicySetTemplate{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:          v1.Auth{ClientID: p.ClientID, ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}},
				Mode:          v1.ModeEnforce,
				Default:       v1.RulePolicy(v1.PolicyDisabled),
				Products:      []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyOnlyTrials)}},
				Interval:      metav1.Duration{Duration: time.Hour},
				Subscriptions: v1.SubscriptionTracking{Track: ptr.To(false)},
			}},
			Tenants: listed,
			Discovery: &v1.SetDiscovery{DelegatedAdminCustomers: &v1.DelegatedAdminCustomersDiscovery{
				PartnerTenantID: p.ID,
				Interval:        metav1.Duration{Duration: time.Hour},
			}},
			ChildLabels: map[string]v1.LabelValue{"shard": "a"},
		},
	}
}

func createSet(s *v1.TenantPurchasePolicySet) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), s)).To(Succeed())
}

// getSet reads a set through the direct client.
func getSet(s *v1.TenantPurchasePolicySet) *v1.TenantPurchasePolicySet {
	GinkgoHelper()
	out := &v1.TenantPurchasePolicySet{}
	Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(s), out)).To(Succeed())
	return out
}

// updateSet applies edit to the current set, retrying on conflicts.
func updateSet(s *v1.TenantPurchasePolicySet, edit func(*v1.TenantPurchasePolicySet)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &v1.TenantPurchasePolicySet{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		edit(cur)
		return k8s.Update(context.Background(), cur)
	})).To(Succeed())
}

func setCondition(s *v1.TenantPurchasePolicySet, t string) *metav1.Condition {
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == t {
			return &s.Status.Conditions[i]
		}
	}
	return nil
}

// setSettled waits until the set has observed its generation and its
// condition t has status and reason (and check passes, when given).
func setSettled(s *v1.TenantPurchasePolicySet, t string, st metav1.ConditionStatus, reason string, checks ...func(Gomega, *v1.TenantPurchasePolicySet)) *v1.TenantPurchasePolicySet {
	GinkgoHelper()
	var out *v1.TenantPurchasePolicySet
	Eventually(func(g Gomega) {
		out = getSet(s)
		g.Expect(out.Status.ObservedGeneration).To(Equal(out.Generation), "observedGeneration")
		c := setCondition(out, t)
		g.Expect(c).NotTo(BeNil(), "condition %s", t)
		g.Expect(c.Status).To(Equal(st), "%s: %s", t, c.Message)
		g.Expect(c.Reason).To(Equal(reason), "%s: %s", t, c.Message)
		for _, check := range checks {
			check(g, out)
		}
	}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
	return out
}

// setReady waits until the set is Ready with n children Ready.
func setReady(s *v1.TenantPurchasePolicySet, n int) *v1.TenantPurchasePolicySet {
	GinkgoHelper()
	return setSettled(s, v1.ReadyCondition, metav1.ConditionTrue, v1.ReasonSucceeded, func(g Gomega, got *v1.TenantPurchasePolicySet) {
		g.Expect(got.Status.Summary.Ready).To(BeEquivalentTo(n))
	})
}

// childrenOf lists the set's children by label (direct client), by name.
func childrenOf(s *v1.TenantPurchasePolicySet) map[string]v1.TenantPurchasePolicy {
	GinkgoHelper()
	var list v1.TenantPurchasePolicyList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(s.Namespace), client.MatchingLabels{v1.SetLabel: s.Name})).To(Succeed())
	out := map[string]v1.TenantPurchasePolicy{}
	for _, p := range list.Items {
		out[p.Name] = p
	}
	return out
}

// childName is the name the set gives a tenant's child by default.
func childName(s *v1.TenantPurchasePolicySet, tenantID string) string {
	return s.Name + "-" + tenantID[:8]
}

// childKey is a child's object, for get and policy helpers.
func childKey(s *v1.TenantPurchasePolicySet, name string) *v1.TenantPurchasePolicy {
	return &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace}}
}

// discoverNow sets the reconcile-now annotation on the set (it discovers at
// once) and returns the set once the controller handled it.
func discoverNow(s *v1.TenantPurchasePolicySet) *v1.TenantPurchasePolicySet {
	GinkgoHelper()
	stamp := fmt.Sprintf("%d", time.Now().UnixNano())
	cur := getSet(s)
	patch := client.MergeFrom(cur.DeepCopy())
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations[v1.RequestedAtAnnotation] = stamp
	Expect(k8s.Patch(context.Background(), cur, patch)).To(Succeed())
	var out *v1.TenantPurchasePolicySet
	Eventually(func() string { out = getSet(s); return out.Status.LastHandledReconcileAt }).WithTimeout(settleTimeout).Should(Equal(stamp))
	return out
}

// discovered returns the tenant IDs status.discovery holds, with missed counts.
func discovered(s *v1.TenantPurchasePolicySet) map[string]int32 {
	out := map[string]int32{}
	if s.Status.Discovery != nil {
		for _, t := range s.Status.Discovery.Tenants {
			out[t.TenantID] = t.Missed
		}
	}
	return out
}

// setEvents returns the set's Events by reason.
func setEvents(s *v1.TenantPurchasePolicySet) map[string][]string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(s.Namespace))).To(Succeed())
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.Kind == "TenantPurchasePolicySet" && e.Regarding.Name == s.Name {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out
}

// waitSetEvent waits for an Event of the set with reason whose note
// contains text.
func waitSetEvent(s *v1.TenantPurchasePolicySet, reason, text string) {
	GinkgoHelper()
	Eventually(func() []string { return setEvents(s)[reason] }).WithTimeout(eventWait).Should(ContainElement(ContainSubstring(text)))
}

// gone waits until the object no longer exists.
func gone(obj client.Object) {
	GinkgoHelper()
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object)))
	}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(BeTrue(), "%s still exists", obj.GetName())
}

// restartedManager starts a new manager and reconciler (see
// restartedController) and returns them with the context they run in.
func restartedManager() (context.Context, ctrl.Manager, *controllers.TenantPurchasePolicyReconciler) {
	GinkgoHelper()
	mgr, r := newManager()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(30 * time.Second).Should(BeClosed())
	})
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	return ctx, mgr, r
}
