package controllers_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// copilotProductID is Microsoft 365 Copilot in the licensing API.
const copilotProductID = "CFQ7TTC0MM8R"

// refundLead is the refund warning lead time the tracking specs use.
const refundLead = 2 * time.Hour

// trackedPolicy is policyFor with subscription tracking on and a 2h refund
// warning.
func trackedPolicy(t testTenant, name string) *v1.TenantPurchasePolicy {
	p := policyFor(t, name)
	track := true
	p.Spec.Subscriptions = v1.SubscriptionTracking{Track: &track, RefundWarning: &metav1.Duration{Duration: refundLead}}
	return p
}

// createSynced creates the policy with the reconcile-now annotation already
// set and returns it as the controller left it after handling that request.
func createSynced(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	stamp := "created-" + time.Now().Format(time.RFC3339Nano)
	if p.Annotations == nil {
		p.Annotations = map[string]string{}
	}
	p.Annotations[v1.RequestedAtAnnotation] = stamp
	Expect(k8s.Create(context.Background(), p)).To(Succeed())
	return handled(p, stamp)
}

// reconcileNow asks for a reconcile, as a user would, and returns the policy
// as the controller left it.
func reconcileNow(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	return handled(p, requestReconcile(p))
}

// upn is a user principal name in the tenant's domain.
func upn(t testTenant, name string) string {
	GinkgoHelper()
	info, err := sim.Tenant(t.ID)
	Expect(err).NotTo(HaveOccurred())
	return name + "@" + info.Domain
}

// buy makes a self-service purchase in the simulator, whatever the product's
// policy says (the policies under test disable every product).
func buy(t testTenant, req m365sim.PurchaseRequest) m365sim.Subscription {
	GinkgoHelper()
	req.IgnorePolicy = true
	s, err := sim.Purchase(t.ID, req)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// simUser returns the simulator's user with that UPN.
func simUser(t testTenant, principal string) m365sim.User {
	GinkgoHelper()
	users, err := sim.Users(t.ID)
	Expect(err).NotTo(HaveOccurred())
	for _, u := range users {
		if strings.EqualFold(u.UserPrincipalName, principal) {
			return u
		}
	}
	Fail("no user " + principal)
	return m365sim.User{}
}

// orgSeats counts, from the simulator's own books, the seats of a SKU in
// the organisation's (not a self-service buyer's) subscriptions: unused in
// enabled ones, and in use in any.
func orgSeats(t testTenant, skuID string) (free, inUse int) {
	GinkgoHelper()
	info, err := sim.Tenant(t.ID)
	Expect(err).NotTo(HaveOccurred())
	subs, err := sim.Subscriptions(t.ID)
	Expect(err).NotTo(HaveOccurred())
	for _, s := range subs {
		if s.SkuID != skuID || s.AccountID != info.OrgAccountID {
			continue
		}
		inUse += len(s.AssignedUsers)
		if s.Status == m365sim.StatusEnabled {
			free += s.TotalLicenses - len(s.AssignedUsers)
		}
	}
	return free, inUse
}

// selfService returns the status entry of a self-service subscription.
func selfService(p *v1.TenantPurchasePolicy, id string) v1.SelfServiceSubscription {
	GinkgoHelper()
	Expect(p.Status.Subscriptions).NotTo(BeNil(), "status.subscriptions")
	for _, e := range p.Status.Subscriptions.SelfService {
		if e.ID == id {
			return e
		}
	}
	Fail("status.subscriptions.selfService has no entry " + id)
	return v1.SelfServiceSubscription{}
}

// handover returns the handover record of a subscription.
func handover(p *v1.TenantPurchasePolicy, id string) v1.HandoverRecord {
	GinkgoHelper()
	Expect(p.Status.Subscriptions).NotTo(BeNil(), "status.subscriptions")
	for _, h := range p.Status.Subscriptions.Handovers {
		if h.SubscriptionID == id {
			return h
		}
	}
	Fail("status.subscriptions.handovers has no record of " + id)
	return v1.HandoverRecord{}
}

// eventCount counts the Events of a reason about a policy, including the
// repeats client-go folds into an Event series (same reason, same object
// version): a repeated Event must not hide behind a series count.
func eventCount(p *v1.TenantPurchasePolicy, reason string) int {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list, client.InNamespace(p.Namespace))).To(Succeed())
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name != p.Name || e.Reason != reason {
			continue
		}
		n++
		if e.Series != nil && e.Series.Count > 1 {
			n += int(e.Series.Count) - 1
		}
	}
	return n
}

// eventNotes returns the notes of the Events of a reason about a policy.
func eventNotes(p *v1.TenantPurchasePolicy, reason string) []string {
	GinkgoHelper()
	return events(p)[reason]
}

// graphCalls is how often the tenant's Graph route was called, e.g. "user"
// (one user read) or "users-list" (the whole directory).
func graphCalls(t testTenant, route string) int {
	return sim.Requests(t.ID).Counts["graph GET "+route]
}

// eventCountAfterNextRun runs the policy once more, as a user would, and
// then counts its Events of reason: a spec asserting that an earlier run
// emitted nothing more looks after a later run instead of watching a clock.
// Events are posted asynchronously, milliseconds after the run that emits
// them; a whole further run (Graph reads and a status write, then the
// annotation seen handled) takes longer, so an Event an earlier run emitted
// has arrived by then.
func eventCountAfterNextRun(p *v1.TenantPurchasePolicy, reason string) int {
	GinkgoHelper()
	reconcileNow(p)
	return eventCount(p, reason)
}

// eventWait bounds the wait for an Event that must come.
const eventWait = 10 * time.Second

// restartedController starts what a restarted controller process has: a new
// manager (new caches and event broadcaster) and a new reconciler with new
// Microsoft clients, token caches and throttling gates, sharing nothing in
// memory with the running one. It registers no controller (the suite's
// controller keeps watching); the returned function runs one reconcile of a
// policy. Everything stops when the spec ends.
func restartedController() func(p *v1.TenantPurchasePolicy) {
	GinkgoHelper()
	ctx, _, r := restartedManager()
	return func(p *v1.TenantPurchasePolicy) {
		GinkgoHelper()
		_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		Expect(err).NotTo(HaveOccurred())
	}
}

// copilotSkuID is the Copilot SKU ID of the simulator's catalogue.
func copilotSkuID() string {
	GinkgoHelper()
	k, ok := m365sim.LookupSKU(m365sim.SkuCopilot)
	Expect(ok).To(BeTrue())
	return k.SkuID
}
