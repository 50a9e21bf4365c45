package controllers_test

import (
	"errors"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/controllers"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Specs of issue 10: the controller is never wrong when Microsoft (or the
// API server) misbehaves.
var _ = Describe("hardening", func() {
	const enabled, disabled, trials = m365sim.PolicyEnabled, m365sim.PolicyDisabled, "OnlyTrialsWithoutPaymentMethod"

	It("keeps the tenant's original values as adoption values when the status patch after the first PUTs is lost", func() {
		t := newTenant()
		Expect(sim.SetPolicy(t.ID, pbiProID, disabled)).To(Succeed())
		Expect(sim.SetPolicy(t.ID, teamsExID, trials)).To(Succeed())
		original := tenantValues(t.ID)
		p := policyFor(t, "lost-patch")
		p.Spec.DeletionPolicy = v1.DeletionRestore

		var refused atomic.Int32
		fault := func(obj client.Object) error {
			if obj.GetNamespace() == t.Namespace && len(putPaths(t.ID, "")) > 0 && refused.CompareAndSwap(0, 1) {
				return apierrors.NewConflict(schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "tenantpurchasepolicies"}, obj.GetName(),
					errors.New("the object has been modified by another client"))
			}
			return nil
		}
		statusPatchFault.Store(&fault)
		DeferCleanup(func() { statusPatchFault.Store(nil) })
		createPolicy(p)

		got := waitReady(p)
		Expect(refused.Load()).To(Equal(int32(1)), "the status patch after the PUTs was refused once")
		adopted := map[string]string{}
		for _, ps := range got.Status.Products {
			adopted[ps.ProductID] = ps.AdoptedValue
		}
		Expect(adopted).To(Equal(original), "adoption values are the tenant's, not the policy's")
		Expect(eventsOf(p, v1.EventAdopted)[v1.EventAdopted]).To(HaveLen(1))

		deletePolicy(p)
		Expect(tenantValues(t.ID)).To(Equal(original), "Restore puts back the tenant's original values")
	})

	It("retries a new product whose PUT answers 404 (replication lag) until it is Disabled", func() {
		const newID = "CFQ7TTC0LAG1"
		t := newTenant()
		p := policyFor(t, "lag")
		createPolicy(p)
		waitReady(p)

		Expect(sim.AddProduct(t.ID, m365sim.Product{ID: newID, Name: "Contoso Lagging"})).To(Succeed())
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT",
			PathPrefix: "/v1.0/policies/AllowSelfServicePurchase/products/" + newID, Status: 404,
			Body: `{"errorCode":"Unknown","reason":"GetProductDetailsByProductIdAsync failed"}`, Count: 2})).To(Succeed())
		DeferCleanup(sim.ClearFaults, t.ID)
		sim.ResetRequests(t.ID)
		requestReconcile(p)

		Eventually(func() string { v, _ := sim.Policy(t.ID, newID); return v }).WithTimeout(settleTimeout).WithPolling(pollEvery).
			Should(Equal(disabled), "default reaches the new product once Microsoft can write it")
		got := waitReady(p)
		Expect(productStatus(got, newID).Rejected).To(BeEmpty(), "a 404 for a product the list shows is not a rejection")
		Expect(putPaths(t.ID, "")).To(Equal([]string{newID, newID, newID}), "two 404s, then the write that lands; no other PUT")
		Expect(eventsOf(p, v1.EventWriteFailed)[v1.EventWriteFailed]).To(ContainElement(ContainSubstring("404")))
	})

	It("writes a status the API server refuses only after bounding it", func(ctx SpecContext) {
		t := newTenant()
		p := policyFor(t, "bounds")
		p.Spec.Suspend = true // the controller leaves its status alone but for Ready
		createPolicy(p)
		settledWith(p, v1.ReadyCondition, metav1.ConditionUnknown, v1.ReasonSuspended)

		raw := get(p)
		before := raw.DeepCopy()
		raw.Status = controllers.OverBounds()
		err := k8s.Status().Patch(ctx, raw, client.MergeFrom(before))
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "the API server refuses the unbounded status (422), got %v", err)

		raw = get(p)
		before = raw.DeepCopy()
		raw.Status = controllers.OverBounds()
		controllers.BoundStatus(&raw.Status)
		Expect(k8s.Status().Patch(ctx, raw, client.MergeFrom(before))).To(Succeed())
		Expect(get(p).Status.Products).To(HaveLen(v1.MaxProducts))
	})
})
