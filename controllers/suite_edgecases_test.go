package controllers_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

var _ = Describe("policy edge cases", func() {
	It("keeps a value Microsoft rejected Stalled on later runs without sending it again", func() {
		t := newTenant()
		p := policyFor(t, "rejected")
		p.Spec.Default = v1.RuleUnmanaged
		p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyDisabled)}}
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT",
			Status: 400, Body: `{"errorCode":"BadRequest","reason":"Policy value not allowed for this product."}`})).To(Succeed())
		DeferCleanup(sim.ClearFaults, t.ID)
		createPolicy(p)

		got := waitStalled(p, v1.ReasonRejected)
		Expect(condition(got, v1.StalledCondition).Message).To(ContainSubstring("Policy value not allowed"))
		Expect(productStatus(got, copilotID).Rejected).To(ContainSubstring("Policy value not allowed"))
		Expect(putPaths(t.ID, "")).To(Equal([]string{copilotID}))

		got = resync(p)
		Expect(condition(got, v1.StalledCondition)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1.ReasonRejected)),
			"a person must still act")
		Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
		Expect(putPaths(t.ID, "")).To(Equal([]string{copilotID}), "not re-sent until the spec changes")

		sim.ClearFaults(t.ID)
		updatePolicy(p, func(p *v1.TenantPurchasePolicy) {
			p.Spec.Products[0].Policy = v1.RulePolicy(v1.PolicyOnlyTrials)
		})
		waitReady(p)
		Expect(sim.Policy(t.ID, copilotID)).To(Equal(string(v1.PolicyOnlyTrials)))
	})

	It("releases a Restore policy whose credentials are gone after 3 attempts, with RestoreSkipped", func() {
		t := newTenant()
		p := policyFor(t, "restore-gone")
		p.Spec.DeletionPolicy = v1.DeletionRestore
		createPolicy(p)
		waitReady(p)
		Expect(k8s.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: t.Namespace}})).To(Succeed())
		sim.ResetRequests(t.ID)

		deletePolicy(p)
		Expect(eventsOf(p, v1.EventRestoreSkipped)[v1.EventRestoreSkipped]).To(ConsistOf(
			And(ContainSubstring("3 attempts"), ContainSubstring("not found"))))
		Expect(sim.Requests(t.ID).Counts).To(BeEmpty(), "no call to Microsoft without credentials")
		Expect(tenantValues(t.ID)).To(Equal(valuesExcept(m365sim.PolicyDisabled, nil)), "the tenant is left as it is")
	})
})
