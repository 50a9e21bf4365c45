package controllers_test

import (
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Issue 5: self-service subscription tracking, against the simulator's
// sample directory (an organisation billing account with a 25-seat Business
// Premium and a 10-seat Copilot subscription, both admin-bought with
// ownerType "User", 3 Copilot seats used).
var _ = Describe("subscription tracking", func() {
	const day = 24 * time.Hour

	It("records a purchase with its refund windows and takeover capacity, and moves the windows when it renews", func() {
		t := newTenant()
		p := createSynced(trackedPolicy(t, "purchase"))
		Expect(p.Status.Subscriptions).NotTo(BeNil(), "tracking ran")
		Expect(p.Status.Subscriptions.SelfService).To(BeEmpty(), "the admin-bought subscriptions with ownerType User are not self-service")

		free, _ := orgSeats(t, copilotSkuID())
		Expect(free).To(BeNumerically(">", 0))
		Expect(free).To(BeNumerically("<", 8), "precondition: the organisation cannot absorb all 8 seats bought, only the one user who holds one")
		created := time.Now().UTC().Add(-3 * day).Truncate(time.Second)
		bought := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "erin"), SkuPartNumber: m365sim.SkuCopilot, Seats: 8, Created: created})
		erin := simUser(t, upn(t, "erin"))
		_, inUse := orgSeats(t, copilotSkuID())

		p = reconcileNow(p)
		want := v1.SelfServiceSubscription{
			ID: bought.ID, SkuPartNumber: m365sim.SkuCopilot, SkuID: copilotSkuID(), BuyerID: erin.ID,
			Seats: 8, Trial: false, Status: "Enabled",
			Created:             &metav1.Time{Time: created},
			FullRefundUntil:     &metav1.Time{Time: created.Add(day)},
			ProratedRefundUntil: &metav1.Time{Time: created.Add(7 * day)},
			AssignedUsers:       1, FreeOrgSeats: int32(free), OrgSeatsInUse: int32(inUse), TakeoverPossible: true,
		}
		Expect(cmp.Diff(want, selfService(p, bought.ID))).To(BeEmpty())
		Expect(p.Status.Subscriptions.SelfService).To(HaveLen(1), "only the purchase is self-service")
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeEquivalentTo(1))
		Eventually(func() []string { return eventNotes(p, v1.EventSelfServicePurchase) }).WithTimeout(eventWait).Should(ConsistOf(
			And(ContainSubstring(erin.ID), ContainSubstring("8 "+m365sim.SkuCopilot), ContainSubstring("paid"))))

		renewed, err := sim.Renew(t.ID, bought.ID)
		Expect(err).NotTo(HaveOccurred())
		renewal := *renewed.LastRenewalDateTime
		p = reconcileNow(p)
		got := selfService(p, bought.ID)
		Expect(got.Created.Time).To(BeTemporally("==", created))
		Expect(got.LastRenewal).NotTo(BeNil())
		Expect(got.LastRenewal.Time).To(BeTemporally("==", renewal))
		Expect(got.FullRefundUntil.Time).To(BeTemporally("==", renewal.Add(day)))
		Expect(got.ProratedRefundUntil.Time).To(BeTemporally("==", renewal.Add(7*day)))

		Expect(eventCountAfterNextRun(p, v1.EventSelfServicePurchase)).To(Equal(1), "a renewal is not a new purchase")
		Expect(graphCalls(t, "subscriptions")).To(BeNumerically(">=", 3), "every sync read the subscriptions")
		Expect(graphCalls(t, "users-list")).To(BeZero(), "the directory is never listed")
		Expect(graphCalls(t, "user")).To(BeZero(), "no user is read while no subscription changes hands")
	})

	It("warns once when the full-refund window is about to close, at the lead time", func() {
		DeferCleanup(func() { clockSkew.Store(0) })
		t := newTenant()
		bought := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "frank"), SkuPartNumber: m365sim.SkuCopilot})
		p := createSynced(trackedPolicy(t, "refund"))
		e := selfService(p, bought.ID)
		Expect(e.FullRefundUntil.Time).To(BeTemporally("==", bought.CreatedDateTime.Add(day)))
		Expect(e.RefundWarned).To(BeFalse())
		Eventually(func() int { return eventCount(p, v1.EventSelfServicePurchase) }).WithTimeout(eventWait).Should(Equal(1))

		By("an hour before the lead time: no warning")
		clockSkew.Store(int64(day - refundLead - time.Hour))
		p = reconcileNow(p)
		Expect(selfService(p, bought.ID).RefundWarned).To(BeFalse())
		Expect(eventCountAfterNextRun(p, v1.EventRefundWindowClosing)).To(BeZero())

		By("inside the lead time: one warning")
		clockSkew.Store(int64(day - refundLead + time.Hour))
		p = reconcileNow(p)
		Expect(selfService(p, bought.ID).RefundWarned).To(BeTrue())
		Eventually(func() []string { return eventNotes(p, v1.EventRefundWindowClosing) }).WithTimeout(eventWait).Should(ConsistOf(
			And(ContainSubstring(bought.ID), ContainSubstring(bought.CreatedDateTime.Add(day).UTC().Format("2006-01-02 15:04")))))

		By("the next reconcile: no second warning")
		p = reconcileNow(p)
		Expect(selfService(p, bought.ID).RefundWarned).To(BeTrue())
		Expect(eventCountAfterNextRun(p, v1.EventRefundWindowClosing)).To(Equal(1))
	})

	It("records an admin takeover exactly once, also when the controller restarted in between", func() {
		t := newTenant()
		bought := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "gina"), SkuPartNumber: m365sim.SkuCopilot})
		gina := simUser(t, upn(t, "gina"))
		p := createSynced(trackedPolicy(t, "takeover"))
		e := selfService(p, bought.ID)
		free, _ := orgSeats(t, copilotSkuID())
		Expect(e.FreeOrgSeats).To(BeEquivalentTo(free))
		Expect(e.TakeoverPossible).To(BeTrue())
		Expect(graphCalls(t, "user")).To(BeZero())

		By("a restarted controller, which knows only what status holds, sees the takeover")
		reconcileRestarted := restartedController()
		_, err := sim.TakeOver(t.ID, bought.ID)
		Expect(err).NotTo(HaveOccurred())
		_, err = sim.AdvanceSubscription(t.ID, bought.ID, m365sim.StatusDeleted) // the cancellation that follows a takeover, completed
		Expect(err).NotTo(HaveOccurred())
		reconcileRestarted(p)

		p = get(p)
		Expect(p.Status.Subscriptions.Handovers).To(HaveLen(1))
		h := handover(p, bought.ID)
		Expect(h.Verdict).To(Equal(v1.VerdictTakenOver))
		Expect(h.BuyerID).To(Equal(gina.ID))
		Expect(h.SkuPartNumber).To(Equal(m365sim.SkuCopilot))
		Expect(h.Evidence).To(And(ContainSubstring(gina.UserPrincipalName), ContainSubstring("holds "+m365sim.SkuCopilot), ContainSubstring("seats of it in use rose")))
		Expect(p.Status.Counters.Takeovers).To(BeEquivalentTo(1))
		Expect(p.Status.Counters.Cancellations).To(BeZero())
		Expect(selfService(p, bought.ID).Handover).To(Equal(v1.VerdictTakenOver))
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeZero())
		Expect(graphCalls(t, "user")).To(Equal(1), "the buyer is read once, when the subscription changed hands")
		Eventually(func() []string { return eventNotes(p, v1.EventTakeoverDetected) }).WithTimeout(eventWait).Should(ConsistOf(ContainSubstring(bought.ID)))

		By("further reconciles of the running controller keep it recorded once")
		for range 2 {
			p = reconcileNow(p)
			Expect(p.Status.Counters.Takeovers).To(BeEquivalentTo(1))
			Expect(p.Status.Subscriptions.Handovers).To(HaveLen(1))
		}
		Expect(graphCalls(t, "user")).To(Equal(1))
		Expect(graphCalls(t, "users-list")).To(BeZero())
		Expect(eventCountAfterNextRun(p, v1.EventTakeoverDetected)).To(Equal(1))
	})

	It("records a cancellation and a trial that ended as such, not as takeovers", func() {
		t := newTenant()
		paid := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "hank"), SkuPartNumber: m365sim.SkuCopilot})
		trial := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "ivy"), SkuPartNumber: m365sim.SkuCopilot, Trial: true})
		p := createSynced(trackedPolicy(t, "cancel"))
		Expect(selfService(p, trial.ID).Trial).To(BeTrue())
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeEquivalentTo(2))

		for _, id := range []string{paid.ID, trial.ID} {
			_, err := sim.Cancel(t.ID, id)
			Expect(err).NotTo(HaveOccurred())
			_, err = sim.AdvanceSubscription(t.ID, id, m365sim.StatusDeleted) // through Warning and Suspended to Deleted
			Expect(err).NotTo(HaveOccurred())
		}
		p = reconcileNow(p)
		Expect(handover(p, paid.ID).Verdict).To(Equal(v1.VerdictCancelled))
		Expect(handover(p, paid.ID).Evidence).To(ContainSubstring("no longer holds " + m365sim.SkuCopilot))
		Expect(handover(p, trial.ID).Verdict).To(Equal(v1.VerdictExpired))
		Expect(p.Status.Counters).To(Equal(v1.Counters{Cancellations: 1, Expiries: 1}))
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeZero())
		Expect(graphCalls(t, "user")).To(Equal(2), "each buyer read once")
		Eventually(func() int { return eventCount(p, v1.EventCancellationDetected) }).WithTimeout(eventWait).Should(Equal(1))
		Eventually(func() int { return eventCount(p, v1.EventTrialExpired) }).WithTimeout(eventWait).Should(Equal(1))

		p = reconcileNow(p)
		Expect(p.Status.Counters).To(Equal(v1.Counters{Cancellations: 1, Expiries: 1}))
		Expect(p.Status.Subscriptions.Handovers).To(HaveLen(2))
		Expect(graphCalls(t, "user")).To(Equal(2))
		Expect(eventCountAfterNextRun(p, v1.EventTakeoverDetected)).To(BeZero())
	})

	It("degrades tracking on a Graph 403 while policy enforcement carries on", func() {
		t := newTenant(m365sim.PermPolicyRead, m365sim.PermPolicyReadWrite, m365sim.PermUserRead) // no Organization.Read.All
		buy(t, m365sim.PurchaseRequest{SkuPartNumber: m365sim.SkuCopilot})
		p := createSynced(trackedPolicy(t, "forbidden"))

		degraded := condition(p, v1.SubscriptionTrackingDegradedCondition)
		Expect(degraded).NotTo(BeNil())
		Expect(degraded.Status).To(Equal(metav1.ConditionTrue))
		Expect(degraded.Reason).To(Equal(v1.ReasonGraphForbidden))
		ready := condition(p, v1.ReadyCondition)
		Expect(ready).NotTo(BeNil())
		Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
		Expect(condition(p, v1.StalledCondition)).To(BeNil())
		Expect(p.Status.Subscriptions).To(BeNil(), "nothing was read, nothing is claimed")

		Expect(sim.Requests(t.ID).Counts["licensing PUT"]).To(BeNumerically(">", 0))
		Expect(sim.Policy(t.ID, copilotProductID)).To(Equal(m365sim.PolicyDisabled), "the policy was enforced")
		Expect(sim.Requests(t.ID).Counts["graph GET"]).To(BeNumerically(">", 0), "tracking tried Graph (its two reads run at once; the first 403 cancels the other, which may not have been sent)")
	})
})
