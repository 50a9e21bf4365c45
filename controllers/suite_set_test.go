package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Policy sets as a partner sees them: children in the namespace, the set's
// status and print columns, and what reached Microsoft. Every spec uses a
// fresh partner with fresh customers.
var _ = Describe("policy sets", func() {
	const enabled, disabled, onlyTrials = m365sim.PolicyEnabled, m365sim.PolicyDisabled, m365sim.PolicyTrialsOnly

	It("gives two listed and three more discovered tenants five Ready children with the merged spec, an override on its child only", func() {
		p := newPartner()
		observed := p.customer(false) // listed only, with overrides
		both := p.customer(true)      // listed and discovered: one child
		found := p.customers(3)       // discovered only
		s := p.set("baseline",
			v1.SetTenant{TenantID: observed, Name: "contoso", Overrides: &v1.PolicyOverrides{
				Mode:     ptr.To(v1.ModeObserve),
				Products: []v1.ProductRule{{ProductID: pbiProID, Policy: v1.RulePolicy(v1.PolicyEnabled)}, {ProductID: copilotID, Policy: v1.RuleUnmanaged}},
			}},
			v1.SetTenant{TenantID: both})
		createSet(s)

		got := setReady(s, 5)
		Expect(got.Status.Summary).To(Equal(v1.SetSummary{Tenants: 5, Ready: 5, Drifted: 1}), "the Observe child differs from its policy")
		Expect(got.Status.Discovery.Count).To(BeEquivalentTo(4))
		Expect(got.Status.Discovery.LastDiscoveryTime).NotTo(BeNil())
		Expect(discovered(got)).To(HaveLen(4))
		Expect(setCondition(got, v1.DiscoveryFailedCondition).Status).To(Equal(metav1.ConditionFalse))
		Expect(setCondition(got, v1.PruneHeldCondition).Reason).To(Equal(v1.ReasonPruneAllowed))
		Expect(setCondition(got, v1.ReconcilingCondition)).To(BeNil())
		Expect(setCondition(got, v1.StalledCondition)).To(BeNil())
		Expect(kstatusOf(got)).To(Equal(status.CurrentStatus))

		children := childrenOf(s)
		wantNames := []string{"baseline-contoso", childName(s, both)}
		for _, id := range found {
			wantNames = append(wantNames, childName(s, id))
		}
		Expect(children).To(HaveLen(5))
		tpl := s.Spec.Template.TenantPurchasePolicyTemplate
		for name, c := range children {
			Expect(wantNames).To(ContainElement(name))
			Expect(c.Labels).To(Equal(map[string]string{v1.SetLabel: "baseline", "shard": "a"}), name)
			ref := metav1.GetControllerOf(&c)
			Expect(ref).NotTo(BeNil(), name)
			Expect(ref.Kind).To(Equal("TenantPurchasePolicySet"))
			Expect(ref.UID).To(Equal(got.UID))
			Expect(c.Spec.Auth).To(Equal(tpl.Auth), name)
			Expect(c.Spec.Default).To(Equal(tpl.Default), name)
			if name == "baseline-contoso" {
				continue
			}
			Expect(c.Spec.Mode).To(Equal(v1.ModeEnforce), name)
			Expect(c.Spec.Products).To(Equal(tpl.Products), name)
		}
		override := children["baseline-contoso"]
		Expect(override.Spec.TenantID).To(Equal(observed))
		Expect(override.Spec.Mode).To(Equal(v1.ModeObserve))
		Expect(override.Spec.Products).To(Equal([]v1.ProductRule{
			{ProductID: copilotID, Policy: v1.RuleUnmanaged}, // replaced in place
			{ProductID: pbiProID, Policy: v1.RulePolicy(v1.PolicyEnabled)},
		}))

		By("Microsoft 365 shows the merged policy: Enforce children converged, the Observe one untouched")
		for _, id := range append([]string{both}, found...) {
			Expect(tenantValues(id)).To(Equal(valuesExcept(disabled, map[string]string{copilotID: onlyTrials})), id)
		}
		Expect(tenantValues(observed)).To(Equal(valuesExcept(enabled, nil)))
		Expect(putPaths(observed, "")).To(BeEmpty())

		By("one discovery, however often the children synced and woke the set")
		Expect(p.discoveries()).To(Equal(1))
		for _, id := range found[:2] {
			resync(childKey(s, childName(s, id)))
		}
		setReady(s, 5)
		Expect(p.discoveries()).To(Equal(1))
		for name, c := range childrenOf(s) {
			Expect(c.Generation).To(Equal(int64(1)), "%s: the set never rewrote a child that matched", name)
		}
		Expect(setEvents(s)).NotTo(HaveKey(v1.EventChildRestored))

		By("kubectl get tpps shows the fleet")
		table := setTable(s.Namespace)
		var columns []string
		for _, c := range table.ColumnDefinitions {
			columns = append(columns, c.Name)
		}
		Expect(columns).To(Equal([]string{"Name", "Tenants", "Ready", "Drifted", "Self-Service", "Last Discovery", "Age"}))
		Expect(table.Rows).To(HaveLen(1))
		Expect(table.Rows[0].Cells[:5]).To(Equal([]any{"baseline", float64(5), float64(5), float64(1), float64(0)}))
		Expect(table.Rows[0].Cells[5]).NotTo(BeEmpty(), "Last Discovery")

		waitSetEvent(s, v1.EventChildCreated, "created 5 children")
		waitSetEvent(s, v1.EventCustomerDiscovered, "4 new customers")
		expectSetNoSecrets(s, p.Secret)
	})

	It("adds a new customer at the next discovery and prunes a removed one only after two, never on a failed or empty discovery", func() {
		p := newPartner()
		ids := p.customers(3)
		s := p.set("gdap")
		createSet(s)
		setReady(s, 3)

		By("a new customer appears at the next discovery")
		late := p.customer(true)
		Expect(childrenOf(s)).NotTo(HaveKey(childName(s, late)), "nothing happens before a discovery")
		discoverNow(s)
		setReady(s, 4)
		Expect(childrenOf(s)).To(HaveKey(childName(s, late)))
		Expect(p.discoveries()).To(Equal(2))

		By("a customer whose relationship ended is missed once: its child stays")
		gone1 := ids[0]
		p.unrelate(gone1)
		got := discoverNow(s)
		Expect(discovered(got)).To(HaveKeyWithValue(gone1, int32(1)))
		Expect(childrenOf(s)).To(HaveKey(childName(s, gone1)))
		Expect(got.Status.Discovery.Count).To(BeEquivalentTo(3))
		waitSetEvent(s, v1.EventCustomerMissing, gone1)

		By("an empty answer prunes nothing and says so")
		Expect(sim.InjectFault(p.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/v1.0/tenantRelationships", Answer: m365sim.AnswerEmptyPage, Count: 1})).To(Succeed())
		got = discoverNow(s)
		held := setCondition(got, v1.PruneHeldCondition)
		Expect(held.Status).To(Equal(metav1.ConditionTrue))
		Expect(held.Reason).To(Equal(v1.ReasonDiscoveryEmpty))
		Expect(discovered(got)).To(HaveKeyWithValue(gone1, int32(1)), "a held discovery counts no one as missing")
		Expect(discovered(got)).To(HaveKeyWithValue(ids[1], int32(0)))
		Expect(childrenOf(s)).To(HaveLen(4))
		waitSetEvent(s, v1.EventPruneHeld, "listed no customer")

		By("a failed discovery prunes nothing either")
		Expect(sim.InjectFault(p.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/v1.0/tenantRelationships", Status: 503, Count: 1})).To(Succeed())
		got = discoverNow(s)
		Expect(setCondition(got, v1.DiscoveryFailedCondition).Status).To(Equal(metav1.ConditionTrue))
		Expect(setCondition(got, v1.DiscoveryFailedCondition).Reason).To(Equal(v1.ReasonTransientError))
		Expect(setCondition(got, v1.PruneHeldCondition).Reason).To(Equal(v1.ReasonDiscoveryFailedHold))
		Expect(setCondition(got, v1.ReconcilingCondition)).NotTo(BeNil(), "discovery retries")
		Expect(discovered(got)).To(HaveKeyWithValue(gone1, int32(1)))
		Expect(childrenOf(s)).To(HaveLen(4))
		waitSetEvent(s, v1.EventDiscoveryFailed, "discovery failed")

		By("the second trusted discovery that misses it prunes it; its child follows its deletionPolicy")
		got = discoverNow(s)
		Expect(discovered(got)).NotTo(HaveKey(gone1))
		gone(childKey(s, childName(s, gone1)))
		got = setReady(s, 3)
		Expect(got.Status.Summary.Tenants).To(BeEquivalentTo(3))
		Expect(setCondition(got, v1.PruneHeldCondition).Status).To(Equal(metav1.ConditionFalse))
		waitSetEvent(s, v1.EventChildPruned, childName(s, gone1))
		Expect(tenantValues(gone1)).To(Equal(valuesExcept(disabled, map[string]string{copilotID: onlyTrials})), "deletionPolicy Orphan leaves the tenant as it is")
	})

	It("holds pruning when a discovery misses more customers than the drop bounds allow", func() {
		p := newPartner()
		ids := p.customers(5)
		s := p.set("bounds")
		createSet(s)
		setReady(s, 5)

		for _, id := range ids[:3] {
			p.unrelate(id)
		}
		for range 2 {
			got := discoverNow(s)
			held := setCondition(got, v1.PruneHeldCondition)
			Expect(held.Reason).To(Equal(v1.ReasonTooManyMissing))
			Expect(held.Message).To(ContainSubstring("3 of the 5 customers"))
			Expect(discovered(got)).To(HaveKeyWithValue(ids[0], int32(0)))
		}
		Expect(childrenOf(s)).To(HaveLen(5))

		By("raising the bounds accepts the drop: two trusted discoveries prune the three")
		updateSet(s, func(cur *v1.TenantPurchasePolicySet) { cur.Spec.Discovery.MaxDropPercent = ptr.To(int32(60)) })
		discoverNow(s)
		discoverNow(s)
		Eventually(func() map[string]v1.TenantPurchasePolicy { return childrenOf(s) }).WithTimeout(settleTimeout).Should(HaveLen(2))
	})

	It("prunes a tenant removed from the list at once, and never with prune: false", func() {
		p := newPartner()
		stays, leaves := p.customer(false), p.customer(false)
		s := p.set("listed", v1.SetTenant{TenantID: stays, Name: "stays"}, v1.SetTenant{TenantID: leaves, Name: "leaves"})
		s.Spec.Discovery = nil
		s.Spec.Prune = ptr.To(false)
		createSet(s)
		setReady(s, 2)

		updateSet(s, func(cur *v1.TenantPurchasePolicySet) { cur.Spec.Tenants = cur.Spec.Tenants[:1] })
		got := setSettled(s, v1.PruneHeldCondition, metav1.ConditionFalse, v1.ReasonPruneDisabled)
		Expect(setCondition(got, v1.PruneHeldCondition).Message).To(ContainSubstring("listed-leaves"))
		Expect(childrenOf(s)).To(HaveKey("listed-leaves"), "prune: false keeps it")
		Expect(got.Status.Summary.Tenants).To(BeEquivalentTo(1))

		updateSet(s, func(cur *v1.TenantPurchasePolicySet) { cur.Spec.Prune = ptr.To(true) })
		gone(childKey(s, "listed-leaves"))
		Expect(childrenOf(s)).To(HaveKey("listed-stays"))
		Expect(setCondition(setReady(s, 1), v1.PruneHeldCondition)).To(BeNil(), "no discovery, nothing held")
	})

	It("restores a child edited by hand", func() {
		p := newPartner()
		id := p.customer(false)
		s := p.set("restore", v1.SetTenant{TenantID: id, Name: "fabrikam"})
		s.Spec.Discovery = nil
		createSet(s)
		setReady(s, 1)
		child := childKey(s, "restore-fabrikam")
		want := get(child).Spec

		By("a person sets Observe mode, suspends it, adds a product rule and drops the shard label")
		updatePolicy(child, func(c *v1.TenantPurchasePolicy) {
			c.Spec.Mode = v1.ModeObserve
			c.Spec.Suspend = true
			c.Spec.Products = append(c.Spec.Products, v1.ProductRule{ProductID: teamsExID, Policy: v1.RulePolicy(v1.PolicyEnabled)})
			delete(c.Labels, "shard")
		})
		Eventually(func(g Gomega) {
			c := get(child)
			g.Expect(c.Spec).To(Equal(want))
			g.Expect(c.Labels).To(HaveKeyWithValue("shard", "a"))
		}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
		waitSetEvent(s, v1.EventChildRestored, "restore-fabrikam")
		setReady(s, 1)

		By("a child deleted by hand is created again")
		before := get(child)
		Expect(k8s.Delete(context.Background(), before)).To(Succeed())
		Eventually(func(g Gomega) {
			c := &v1.TenantPurchasePolicy{}
			g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(child), c)).To(Succeed())
			g.Expect(c.UID).NotTo(Equal(before.UID))
			g.Expect(c.Spec).To(Equal(want))
		}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
		setReady(s, 1)

		By("a label removed from childLabels leaves the children")
		updateSet(s, func(cur *v1.TenantPurchasePolicySet) { cur.Spec.ChildLabels = nil })
		Eventually(func() map[string]string { return get(child).Labels }).WithTimeout(settleTimeout).Should(Equal(map[string]string{v1.SetLabel: "restore"}))
	})

	It("reports a child in conflict with an older hand-written policy, and names around a policy it does not own", func() {
		p := newPartner()
		id := p.customer(false)
		ns := p.Namespace
		older := policyFor(testTenant{ID: id, ClientID: p.ClientID, Namespace: ns}, "conflict-"+id[:8]) // the name the set wants
		createPolicy(older)
		olderGot := waitReady(older)

		s := p.set("conflict", v1.SetTenant{TenantID: id})
		s.Spec.Discovery = nil
		// creationTimestamp has one-second resolution: the child must be strictly newer.
		Eventually(func() bool { return time.Now().Truncate(time.Second).After(olderGot.CreationTimestamp.Time) }).
			WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
		createSet(s)
		got := setSettled(s, v1.StalledCondition, metav1.ConditionTrue, v1.ReasonChildrenStalled)
		fallback := "conflict-" + id
		Expect(childrenOf(s)).To(HaveKey(fallback), "the taken name falls back to <set>-<tenantID>")
		Expect(get(older).OwnerReferences).To(BeEmpty(), "the hand-written policy is left alone")
		Expect(got.Status.Summary).To(Equal(v1.SetSummary{Tenants: 1, Stalled: 1, InConflict: 1}))
		Expect(got.Status.NotReady).To(ConsistOf(v1.ChildReport{Name: fallback, TenantID: id, Reason: v1.ReasonConflictLost,
			Message: condition(get(childKey(s, fallback)), v1.StalledCondition).Message}))
		Expect(setCondition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
		Expect(kstatusOf(got)).To(Equal(status.FailedStatus))
		waitSetEvent(s, v1.EventNameCollision, fallback)
		Expect(sim.Policy(id, copilotID)).To(Equal(disabled), "the child in conflict writes nothing")

		By("the older policy leaves: the child takes the tenant and the set is Ready")
		deletePolicy(older)
		setReady(s, 1)
	})

	It("stalls with the missing permission when the partner may not list customers, and still serves its listed tenants", func() {
		p := newPartner(m365sim.PermOrganizationRead)
		id := p.customer(false)
		s := p.set("forbidden", v1.SetTenant{TenantID: id})
		createSet(s)
		got := setSettled(s, v1.StalledCondition, metav1.ConditionTrue, v1.ReasonDiscoveryForbidden)
		Expect(setCondition(got, v1.StalledCondition).Message).To(ContainSubstring("DelegatedAdminRelationship.Read.All"))
		Expect(setCondition(got, v1.DiscoveryFailedCondition).Reason).To(Equal(v1.ReasonDiscoveryForbidden))
		Expect(setCondition(got, v1.ReconcilingCondition)).To(BeNil())
		Eventually(func() bool { return condition(get(childKey(s, childName(s, id))), v1.ReadyCondition) != nil }).WithTimeout(settleTimeout).Should(BeTrue())
		waitReady(childKey(s, childName(s, id)))
		expectSetNoSecrets(s, p.Secret)
	})

	It("discovers as a delegated partner admin (Admin Agent) and writes the rotated refresh token back", func() {
		p := newPartner()
		adminApp := uuid.NewString()
		Expect(sim.RegisterApp(p.ID, m365sim.App{ClientID: adminApp})).To(Succeed()) // a public client
		rt, err := sim.RegisterDelegatedUser(p.ID, adminApp, []string{m365sim.RoleAdminAgent})
		Expect(err).NotTo(HaveOccurred())
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "partner-admin", Namespace: p.Namespace}, StringData: map[string]string{"refreshToken": rt}}
		Expect(k8s.Create(context.Background(), secret)).To(Succeed())
		p.customers(2)
		s := p.set("delegated")
		s.Spec.Discovery.DelegatedAdminCustomers.Auth = &v1.Auth{ClientID: adminApp, RefreshTokenRef: &v1.SecretKeyRef{Name: "partner-admin", Key: "refreshToken"}}
		createSet(s)

		got := setReady(s, 2)
		Expect(got.Status.Discovery.Count).To(BeEquivalentTo(2))
		Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		Expect(string(secret.Data["refreshToken"])).NotTo(Equal(rt), "the rotated refresh token is written back")
		expectSetNoSecrets(s, rt, string(secret.Data["refreshToken"]))
	})

	It("keeps its discovery in status: a restarted controller does not list customers again before the interval", func() {
		p := newPartner()
		p.customers(2)
		s := p.set("restart")
		createSet(s)
		first := setReady(s, 2)
		Expect(p.discoveries()).To(Equal(1))

		reconcile := restartedSetController()
		reconcile(s)
		after := getSet(s)
		Expect(p.discoveries()).To(Equal(1))
		Expect(after.Status.Discovery.Tenants).To(Equal(first.Status.Discovery.Tenants))
		Expect(after.Status.Summary.Ready).To(BeEquivalentTo(2))
	})

	It("deletes its children when it is deleted; each follows its deletionPolicy", func() {
		p := newPartner()
		first, second := p.customer(false), p.customer(false)
		s := p.set("delete", v1.SetTenant{TenantID: first}, v1.SetTenant{TenantID: second})
		s.Spec.Discovery = nil
		s.Spec.Template.DeletionPolicy = v1.DeletionRestore
		createSet(s)
		setReady(s, 2)
		Expect(tenantValues(first)).To(Equal(valuesExcept(disabled, map[string]string{copilotID: onlyTrials})))

		Expect(k8s.Delete(context.Background(), getSet(s))).To(Succeed())
		gone(s)
		Expect(childrenOf(s)).To(BeEmpty())
		for _, id := range []string{first, second} {
			Expect(tenantValues(id)).To(Equal(valuesExcept(enabled, nil)), "deletionPolicy Restore put the adoption values back")
		}
	})
})

var _ = Describe("policy sets, suspended and orphaned", func() {
	It("writes nothing while suspended, and creates its children when resumed", func() {
		p := newPartner()
		id := p.customer(true)
		s := p.set("paused")
		s.Spec.Suspend = true
		createSet(s)
		setSettled(s, v1.ReadyCondition, metav1.ConditionUnknown, v1.ReasonSuspended)
		Expect(childrenOf(s)).To(BeEmpty())
		Expect(p.discoveries()).To(BeZero())

		updateSet(s, func(cur *v1.TenantPurchasePolicySet) { cur.Spec.Suspend = false })
		setReady(s, 1)
		Expect(childrenOf(s)).To(HaveKey(childName(s, id)))
	})

	It("leaves its children to the garbage collector when deleted with --cascade=orphan", func() {
		p := newPartner()
		id := p.customer(false)
		s := p.set("orphan", v1.SetTenant{TenantID: id})
		s.Spec.Discovery = nil
		createSet(s)
		setReady(s, 1)

		Expect(k8s.Delete(context.Background(), getSet(s), client.PropagationPolicy(metav1.DeletePropagationOrphan))).To(Succeed())
		Eventually(func() []string { return getSet(s).Finalizers }).WithTimeout(settleTimeout).Should(Equal([]string{metav1.FinalizerOrphanDependents}),
			"the set's finalizer is released; Kubernetes' orphan finalizer stays for the garbage collector (envtest runs none)")
		child := get(childKey(s, childName(s, id)))
		Expect(child.DeletionTimestamp).To(BeNil())
		Expect(condition(child, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
	})
})

// setTable fetches the sets of namespace as the server-side Table that
// kubectl get prints.
func setTable(namespace string) *metav1.Table {
	GinkgoHelper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	Expect(err).NotTo(HaveOccurred())
	body, err := dc.RESTClient().Get().
		AbsPath(fmt.Sprintf("/apis/commerce.tenantpolicy.io/v1alpha1/namespaces/%s/tenantpurchasepolicysets", namespace)).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	Expect(err).NotTo(HaveOccurred(), "GET table: %s", body)
	table := &metav1.Table{}
	Expect(json.Unmarshal(body, table)).To(Succeed())
	return table
}

// expectSetNoSecrets asserts that no secret appears in the set's status, its
// Events or the controller's log.
func expectSetNoSecrets(s *v1.TenantPurchasePolicySet, secrets ...string) {
	GinkgoHelper()
	expectNoSecretsIn(getSet(s).Status, setEvents(s), secrets...)
}

// restartedSetController is restartedController for sets: a new manager
// and reconcilers sharing nothing in memory with the running ones; the
// returned function runs one reconcile of a set.
func restartedSetController() func(s *v1.TenantPurchasePolicySet) {
	GinkgoHelper()
	ctx, mgr, r := restartedManager()
	sr := newSetReconciler(mgr, r)
	return func(s *v1.TenantPurchasePolicySet) {
		GinkgoHelper()
		_, err := sr.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(s)})
		Expect(err).NotTo(HaveOccurred())
	}
}
