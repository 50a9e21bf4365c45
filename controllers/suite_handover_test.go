package controllers_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Issue 10 item 3: a takeover, cancellation or expiry is recorded only on
// positive evidence. Graph answers that leave a subscription out, and
// subscriptions that stop being paid, must not be mistaken for one.
var _ = Describe("handover evidence", func() {
	// tracked buys one Copilot seat for a user of a fresh tenant and returns
	// the tracking policy after its first sync, which announced it.
	tracked := func(name string) (testTenant, m365sim.Subscription, *v1.TenantPurchasePolicy) {
		GinkgoHelper()
		t := newTenant()
		bought := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, name), SkuPartNumber: m365sim.SkuCopilot})
		p := createSynced(trackedPolicy(t, name))
		Expect(selfService(p, bought.ID).Status).To(Equal(m365sim.StatusEnabled))
		Eventually(func() int { return eventCount(p, v1.EventSelfServicePurchase) }).WithTimeout(eventWait).Should(Equal(1))
		return t, bought, p
	}
	// nothingRecorded checks no handover was recorded and the purchase is
	// still tracked, with the status Graph shows.
	nothingRecorded := func(p *v1.TenantPurchasePolicy, id, status string) {
		GinkgoHelper()
		Expect(p.Status.Subscriptions.Handovers).To(BeEmpty())
		Expect(p.Status.Counters).To(Equal(v1.Counters{}))
		e := selfService(p, id)
		Expect(e.Status).To(Equal(status))
		Expect(e.Handover).To(BeEmpty())
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeEquivalentTo(1), "still counted as active")
	}

	It("shows the refund windows spec.subscriptions sets (10 days prorated, as in Chile)", func() {
		t := newTenant()
		created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		bought := buy(t, m365sim.PurchaseRequest{UserPrincipalName: upn(t, "olga"), SkuPartNumber: m365sim.SkuCopilot, Created: created})
		p := trackedPolicy(t, "chile")
		p.Spec.Subscriptions.FullRefundWindow = &metav1.Duration{Duration: 0}
		p.Spec.Subscriptions.ProratedRefundWindow = &metav1.Duration{Duration: 240 * time.Hour}
		e := selfService(createSynced(p), bought.ID)
		Expect(e.FullRefundUntil.Time).To(BeTemporally("==", created))
		Expect(e.ProratedRefundUntil.Time).To(BeTemporally("==", created.Add(240*time.Hour)))
		Expect(e.RefundWarned).To(BeFalse(), "no full-refund window to warn about")
	})

	It("takes an empty page for no evidence: the purchase is read by id, kept, and not announced again", func() {
		t, bought, p := tracked("jack")
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/v1.0/directory/subscriptions",
			Answer: m365sim.AnswerEmptyPage, Count: 1})).To(Succeed())
		p = reconcileNow(p)
		nothingRecorded(p, bought.ID, m365sim.StatusEnabled)
		Expect(graphCalls(t, "subscription")).To(Equal(1), "the vanished subscription was read by id, once")
		Expect(graphCalls(t, "user")).To(BeZero())

		By("the next, complete answer: no second purchase Event, no read by id")
		Expect(eventCountAfterNextRun(p, v1.EventSelfServicePurchase)).To(Equal(1))
		nothingRecorded(get(p), bought.ID, m365sim.StatusEnabled)
		Expect(graphCalls(t, "subscription")).To(Equal(1), "steady state reads nothing by id")
	})

	It("takes a short page for no evidence", func() {
		t, bought, p := tracked("kate")
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/v1.0/directory/subscriptions",
			Answer: m365sim.AnswerShortPage, ItemID: bought.ID, Count: 1})).To(Succeed())
		p = reconcileNow(p)
		nothingRecorded(p, bought.ID, m365sim.StatusEnabled)
		Expect(graphCalls(t, "subscription")).To(Equal(1))
		Expect(eventCountAfterNextRun(p, v1.EventSelfServicePurchase)).To(Equal(1))
	})

	It("keeps a subscription whose card failed (Warning, Suspended, users still licensed) as active, with its status", func() {
		t, bought, p := tracked("liam")
		for _, status := range []string{m365sim.StatusWarning, m365sim.StatusSuspended} {
			_, err := sim.FailPayment(t.ID, bought.ID, status)
			Expect(err).NotTo(HaveOccurred())
			p = reconcileNow(p)
			nothingRecorded(p, bought.ID, status)
		}
		Expect(graphCalls(t, "user")).To(BeZero(), "the buyer is not read while their seat is in use")

		By("paid again: Enabled")
		_, err := sim.Renew(t.ID, bought.ID)
		Expect(err).NotTo(HaveOccurred())
		nothingRecorded(reconcileNow(p), bought.ID, m365sim.StatusEnabled)
		Expect(eventCountAfterNextRun(p, v1.EventTakeoverDetected)).To(BeZero())
	})

	It("records a cancellation that passes through Warning and Suspended once, when it is Deleted", func() {
		t, bought, p := tracked("mia")
		_, err := sim.Cancel(t.ID, bought.ID) // Warning, the buyer still licensed
		Expect(err).NotTo(HaveOccurred())
		nothingRecorded(reconcileNow(p), bought.ID, m365sim.StatusWarning)
		_, err = sim.AdvanceSubscription(t.ID, bought.ID, m365sim.StatusSuspended)
		Expect(err).NotTo(HaveOccurred())
		nothingRecorded(reconcileNow(p), bought.ID, m365sim.StatusSuspended)
		_, err = sim.AdvanceSubscription(t.ID, bought.ID, m365sim.StatusDeleted) // the licence is gone
		Expect(err).NotTo(HaveOccurred())
		p = reconcileNow(p)
		Expect(handover(p, bought.ID).Verdict).To(Equal(v1.VerdictCancelled))
		Expect(handover(p, bought.ID).Evidence).To(ContainSubstring("no longer holds " + m365sim.SkuCopilot))
		Expect(selfService(p, bought.ID).Handover).To(Equal(v1.VerdictCancelled))
		Expect(p.Status.Counters).To(Equal(v1.Counters{Cancellations: 1}))
		Expect(p.Status.Summary.SelfServiceSubscriptions).To(BeZero())

		p = reconcileNow(p)
		Expect(p.Status.Counters).To(Equal(v1.Counters{Cancellations: 1}), "recorded once")
		Expect(graphCalls(t, "user")).To(Equal(1), "the buyer was read once, when the subscription ended")
		Expect(eventCountAfterNextRun(p, v1.EventCancellationDetected)).To(Equal(1))
	})

	It("records a takeover at once (users moved, subscription Warning), once through Suspended and Deleted and an empty list", func() {
		t, bought, p := tracked("noah")
		before := selfService(p, bought.ID).OrgSeatsInUse
		_, err := sim.TakeOver(t.ID, bought.ID)
		Expect(err).NotTo(HaveOccurred())
		p = reconcileNow(p)
		Expect(selfService(p, bought.ID).Status).To(Equal(m365sim.StatusWarning), "the cancellation that follows a takeover has begun")
		h := handover(p, bought.ID)
		Expect(h.Verdict).To(Equal(v1.VerdictTakenOver))
		Expect(h.Evidence).To(ContainSubstring("its seats no longer in use"))
		Expect(h.Evidence).To(ContainSubstring("rose from"))
		Expect(selfService(p, bought.ID).OrgSeatsInUse).To(Equal(before+1), "one user moved onto an organisation seat")
		Expect(p.Status.Counters).To(Equal(v1.Counters{Takeovers: 1}))

		for _, status := range []string{m365sim.StatusSuspended, m365sim.StatusDeleted} {
			_, err = sim.AdvanceSubscription(t.ID, bought.ID, status)
			Expect(err).NotTo(HaveOccurred())
			p = reconcileNow(p)
			Expect(p.Status.Counters).To(Equal(v1.Counters{Takeovers: 1}))
			Expect(selfService(p, bought.ID).Status).To(Equal(status))
		}
		Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointGraph, PathPrefix: "/v1.0/directory/subscriptions",
			Answer: m365sim.AnswerEmptyPage, Count: 1})).To(Succeed())
		p = reconcileNow(p)
		Expect(p.Status.Counters).To(Equal(v1.Counters{Takeovers: 1}))
		Expect(selfService(p, bought.ID).Handover).To(Equal(v1.VerdictTakenOver), "kept, so a later list does not announce it again")
		Expect(graphCalls(t, "subscription")).To(BeZero(), "a handed-over subscription is never read by id")
		Expect(eventCountAfterNextRun(p, v1.EventSelfServicePurchase)).To(Equal(1))
		Expect(get(p).Status.Counters).To(Equal(v1.Counters{Takeovers: 1}))
	})
})
