package controllers_test

import (
	"context"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Issue 10 item 9: a Restore that cannot succeed never blocks deletion (and
// with it the namespace's) for good.
var _ = Describe("deletion that cannot restore", func() {
	// synced creates a Restore policy of t and waits until it adopted the tenant.
	synced := func(t testTenant, name string) *v1.TenantPurchasePolicy {
		GinkgoHelper()
		p := policyFor(t, name)
		p.Spec.DeletionPolicy = v1.DeletionRestore
		createPolicy(p)
		waitReady(p)
		sim.ResetRequests(t.ID)
		return p
	}
	skipped := func(p *v1.TenantPurchasePolicy, cause string) {
		GinkgoHelper()
		Eventually(func() []string { return eventsOf(p, v1.EventRestoreSkipped)[v1.EventRestoreSkipped] }).WithTimeout(eventWait).Should(ConsistOf(
			And(ContainSubstring("Restore impossible for 3 attempts"), ContainSubstring(cause), ContainSubstring("tenant left as it is"))))
	}

	It("releases a policy whose secret Entra refuses (401) after 3 attempts", func() {
		t := newTenant()
		p := synced(t, "restore-refused")
		setSecret(t.Namespace, "app", "revoked-"+uuid.NewString())
		deletePolicy(p)
		skipped(p, "invalid_client")
		Expect(putPaths(t.ID, t.ClientID)).To(BeEmpty(), "nothing was written")
	})

	It("releases a policy of a tenant Entra no longer knows (AADSTS90002)", func() {
		t := newTenant()
		p := policyFor(t, "restore-no-tenant")
		p.Spec.TenantID = uuid.NewString() // no such tenant: deleted
		p.Spec.DeletionPolicy = v1.DeletionRestore
		createPolicy(p)
		waitStalled(p, v1.ReasonAuthenticationFailed)
		deletePolicy(p)
		skipped(p, "AADSTS90002")
	})

	It("releases a policy whose tenant lists no products", func() {
		t := newTenant()
		p := synced(t, "restore-no-products")
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Status: 200, Body: `{"items":[]}`})).To(Succeed())
		deletePolicy(p)
		skipped(p, "listed no products")
		Expect(putPaths(t.ID, t.ClientID)).To(BeEmpty())
	})

	It("releases at once when deletionPolicy is set to Orphan on a deleting policy", func() {
		t := newTenant()
		p := synced(t, "restore-to-orphan")
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: 503})).To(Succeed())
		DeferCleanup(func() { sim.ClearFaults(t.ID) })
		Expect(k8s.Delete(context.Background(), p)).To(Succeed())

		By("a 5xx is retried and not counted; the Ready message names the way out")
		Eventually(func(g Gomega) {
			c := condition(get(p), v1.ReadyCondition)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(v1.ReasonDeleting))
			g.Expect(c.Message).To(And(ContainSubstring("finalizer kept"), ContainSubstring("set deletionPolicy: Orphan to release now")))
		}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
		Expect(get(p).Status.RestoreAttempts).To(BeZero())

		By("the spec can change while deletionTimestamp is set: Orphan releases the finalizer")
		updatePolicy(p, func(cur *v1.TenantPurchasePolicy) {
			Expect(cur.DeletionTimestamp).NotTo(BeNil())
			cur.Spec.DeletionPolicy = v1.DeletionOrphan
		})
		Eventually(func() error {
			return k8s.Get(context.Background(), client.ObjectKeyFromObject(p), &v1.TenantPurchasePolicy{})
		}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(MatchError(ContainSubstring("not found")))
		Expect(putPaths(t.ID, t.ClientID)).To(BeEmpty())
		Expect(events(p)).NotTo(HaveKey(v1.EventRestoreSkipped), "Orphan is a choice, not a skipped Restore")
	})
})
