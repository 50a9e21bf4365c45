package controllers_test

import (
	"errors"
	"sync/atomic"
	"time"

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

	It("keeps the tenant's original values as adoption values when the status write after the first PUTs is lost", func() {
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
		statusWriteFault.Store(&fault)
		DeferCleanup(func() { statusWriteFault.Store(nil) })
		createPolicy(p)

		got := waitReady(p)
		Expect(refused.Load()).To(Equal(int32(1)), "the status write after the PUTs was refused once")
		adopted := map[string]string{}
		for _, ps := range got.Status.Products {
			adopted[ps.ProductID] = ps.AdoptedValue
		}
		Expect(adopted).To(Equal(original), "adoption values are the tenant's, not the policy's")
		Expect(eventsOf(p, v1.EventAdopted)[v1.EventAdopted]).To(HaveLen(1))

		deletePolicy(p)
		Expect(tenantValues(t.ID)).To(Equal(original), "Restore puts back the tenant's original values")
	})

	It("retries a new product whose PUT answers 404 while Microsoft replicates it, until default reaches it", func() {
		const newID = "CFQ7TTC0LAG1"
		t := newTenant()
		p := policyFor(t, "lag")
		createPolicy(p)
		waitReady(p)

		Expect(sim.AddProduct(t.ID, m365sim.Product{ID: newID, Name: "Contoso Lagging", ReplicationLag: 3 * time.Second})).To(Succeed())
		sim.ResetRequests(t.ID)
		requestReconcile(p)

		Eventually(func() string { v, _ := sim.Policy(t.ID, newID); return v }).WithTimeout(settleTimeout).WithPolling(pollEvery).
			Should(Equal(disabled), "default reaches the new product once Microsoft can write it")
		got := waitReady(p)
		Expect(productStatus(got, newID).Rejected).To(BeEmpty(), "a 404 for a product the list shows is not a rejection")
		Expect(putPaths(t.ID, "")).To(And(ContainElements(newID, newID), HaveEach(newID)), "404s, then the write that lands; no other PUT")
		Expect(eventsOf(p, v1.EventWriteFailed)[v1.EventWriteFailed]).To(ContainElement(ContainSubstring("404")))
	})

	DescribeTable("says so, and stops, when Microsoft accepts a write and never applies it",
		func(answer string, detected, corrected int64) {
			t := newTenant()
			p := policyFor(t, "not-applied")
			createPolicy(p)
			waitReady(p)
			skewClock(2 * time.Minute)
			Expect(productStatus(resync(p), copilotID).PendingValue).To(BeEmpty(), "the list confirmed the adoption's writes")
			Expect(sim.SetPolicy(t.ID, copilotID, enabled)).To(Succeed())
			Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT",
				PathPrefix: "/v1.0/policies/AllowSelfServicePurchase/products/" + copilotID, Answer: answer})).To(Succeed())
			DeferCleanup(sim.ClearFaults, t.ID)
			sim.ResetRequests(t.ID)

			var got *v1.TenantPurchasePolicy
			for sync := 2; sync <= 7; sync++ { // an interval apart: a list right after a write may be stale
				skewClock(time.Duration(sync) * 2 * time.Minute)
				if got = resync(p); condition(got, v1.StalledCondition) != nil {
					break
				}
			}
			Expect(condition(got, v1.StalledCondition)).To(And(HaveField("Reason", v1.ReasonWriteNotApplied), HaveField("Message", ContainSubstring(copilotID))))
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(putPaths(t.ID, "")).To(Equal([]string{copilotID, copilotID, copilotID}), "3 writes, then no more")
			Expect(productStatus(got, copilotID).UnconfirmedWrites).To(Equal(int32(3)))
			Expect(got.Status.Counters).To(And(HaveField("DriftDetected", detected), HaveField("DriftCorrected", corrected)))
			Expect(eventsOf(p, v1.EventWriteNotApplied)[v1.EventWriteNotApplied]).To(ConsistOf(ContainSubstring("3 times in a row")))

			skewClock(20 * time.Minute)
			again := resync(p)
			Expect(putPaths(t.ID, "")).To(HaveLen(3), "a held value is not written at every interval")
			Expect(again.Status.Counters).To(Equal(got.Status.Counters), "nor counted again")

			Expect(sim.SetPolicy(t.ID, copilotID, disabled)).To(Succeed(), "an admin sets it by hand")
			skewClock(30 * time.Minute)
			Expect(productStatus(resync(p), copilotID).UnconfirmedWrites).To(BeZero(), "the tenant shows it: the hold is over")
			Expect(condition(get(p), v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
		},
		Entry("answered with the value written", m365sim.AnswerNotApplied, int64(4), int64(3)),
		Entry("answered with the old value", m365sim.AnswerNotAppliedOld, int64(1), int64(0)),
	)

	It("never holds a value because reads right after its writes are stale", func() {
		t := newTenant()
		p := policyFor(t, "stale")
		createPolicy(p)
		waitReady(p)
		Expect(sim.SetPolicy(t.ID, copilotID, enabled)).To(Succeed())
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "PUT",
			Answer: m365sim.AnswerStaleReads, StaleFor: time.Minute})).To(Succeed())
		DeferCleanup(sim.ClearFaults, t.ID)

		for range 4 { // each read within seconds of the last write, which it does not show
			got := resync(p)
			Expect(condition(got, v1.StalledCondition)).To(BeNil(), "a stale read is no evidence that Microsoft did not apply a write")
		}
		Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled))
	})

	It("keeps a product missing from one list, and neither announces nor counts it when it returns", func() {
		t := newTenant()
		p := policyFor(t, "missing")
		p.Spec.DeletionPolicy = v1.DeletionRestore
		createPolicy(p)
		waitReady(p)
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET",
			Answer: m365sim.AnswerShortPage, ItemID: copilotID, Count: 1})).To(Succeed())
		DeferCleanup(sim.ClearFaults, t.ID)
		sim.ResetRequests(t.ID)

		got := resync(p)
		entry := productStatus(got, copilotID)
		Expect(entry.MissingSince).NotTo(BeNil())
		Expect(entry.AdoptedValue).To(Equal(enabled), "its adoption value is kept")
		Expect(got.Status.Summary.Managed).To(Equal(int32(productCount-1)), "a missing product counts nowhere")
		Expect(eventsOf(p, v1.EventProductMissing)[v1.EventProductMissing]).To(ConsistOf(ContainSubstring(copilotID)))

		got = resync(p)
		Expect(productStatus(got, copilotID).MissingSince).To(BeNil(), "back in the list")
		Expect(got.Status.Counters).To(And(HaveField("NewProducts", BeZero()), HaveField("DriftDetected", BeZero())))
		Expect(events(p)).NotTo(HaveKey(v1.EventNewProductDetected))
		Expect(putPaths(t.ID, "")).To(BeEmpty(), "nothing written for a product missing from one list")

		deletePolicy(p)
		Expect(sim.Policy(t.ID, copilotID)).To(Equal(enabled), "Restore still puts it back")
	})

	It("counts what Microsoft's lists held beyond the items used, announces it, and clears it when the lists are clean", func() {
		t := newTenant()
		p := policyFor(t, "anomalies")
		track := true
		p.Spec.Subscriptions.Track = &track
		createPolicy(p)
		Expect(waitReady(p).Status.ListAnomalies).To(BeNil(), "clean lists leave no trace")
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, Method: "GET", PathPrefix: "/v1.0/directory/subscriptions",
			Answer: m365sim.AnswerDuplicateItems, N: 1})).To(Succeed())
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Method: "GET", Answer: m365sim.AnswerDuplicateItems, N: 2})).To(Succeed())
		DeferCleanup(sim.ClearFaults, t.ID)

		got := resync(p)
		Expect(got.Status.ListAnomalies).To(Equal(&v1.ListAnomalies{Products: &v1.ListCounts{Duplicates: 2}, Subscriptions: &v1.ListCounts{Duplicates: 1}}))
		Expect(eventsOf(p, v1.EventListAnomalies)[v1.EventListAnomalies]).To(ConsistOf(And(
			ContainSubstring("product list: 2 duplicate"), ContainSubstring("subscription lists: 1 duplicate"))))
		Expect(got.Status.Subscriptions.SelfService).To(HaveLen(len(uniqueIDs(got.Status.Subscriptions.SelfService))), "no subscription twice")

		sim.ClearFaults(t.ID)
		Expect(resync(p).Status.ListAnomalies).To(BeNil(), "clean lists again")
	})

	DescribeTable("records a product list the API server would refuse in status, bounded",
		func(fault m365sim.Fault, check func(*v1.TenantPurchasePolicy)) {
			t := newTenant()
			p := policyFor(t, "odd-list")
			createPolicy(p)
			waitReady(p)
			fault.Endpoint, fault.Method, fault.Count = m365sim.EndpointLicensing, "GET", 1
			Expect(sim.InjectFault(t.ID, fault)).To(Succeed())
			DeferCleanup(sim.ClearFaults, t.ID)

			got := resync(p) // the run's status write went through
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			check(got)
		},
		Entry("duplicate product IDs", m365sim.Fault{Answer: m365sim.AnswerDuplicateItems, N: 3}, func(got *v1.TenantPurchasePolicy) {
			Expect(got.Status.Products).To(HaveLen(productCount))
			Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(got.Status.ListAnomalies).NotTo(BeNil())
			Expect(got.Status.ListAnomalies.Products).To(Equal(&v1.ListCounts{Duplicates: 3}), "the duplicates dropped are counted")
			Expect(eventsOf(got, v1.EventListAnomalies)[v1.EventListAnomalies]).To(ConsistOf(ContainSubstring("product list: 3 duplicate and 0 unusable item(s) dropped, 0 cut to fit")))
		}),
		Entry("a 300-character name", m365sim.Fault{Answer: m365sim.AnswerLongName, ItemID: copilotID, N: 300}, func(got *v1.TenantPurchasePolicy) {
			Expect(len([]rune(productStatus(got, copilotID).Name))).To(BeNumerically("<=", v1.MaxNameLength))
			Expect(got.Status.ListAnomalies.Products).To(Equal(&v1.ListCounts{Truncated: 1}), "the cut name is counted")
		}),
		Entry("null items", m365sim.Fault{Answer: m365sim.AnswerNullItems, N: 2}, func(got *v1.TenantPurchasePolicy) {
			Expect(got.Status.Products).To(HaveLen(productCount))
			Expect(got.Status.ListAnomalies.Products).To(Equal(&v1.ListCounts{Invalid: 2}), "the unusable items dropped are counted")
			Expect(got.Status.Summary.ProductsDropped).To(Equal(int32(2)))
		}),
		Entry("more than 256 products", m365sim.Fault{Answer: m365sim.AnswerManyItems, N: 250}, func(got *v1.TenantPurchasePolicy) {
			Expect(got.Status.Products).To(HaveLen(v1.MaxProducts))
			Expect(got.Status.Summary.ProductsDropped).To(Equal(int32(productCount + 250 - v1.MaxProducts)))
		}),
	)

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

// uniqueIDs is the set of subscription IDs of a status list.
func uniqueIDs(subs []v1.SelfServiceSubscription) map[string]bool {
	ids := map[string]bool{}
	for _, e := range subs {
		ids[e.ID] = true
	}
	return ids
}
