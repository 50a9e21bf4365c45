package controllers_test

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// The tenant Lease is in the reconciler's default Lease namespace.
const leaseNamespace = "default"

var _ = Describe("ownership through the tenant Lease", func() {
	// ownerAndContender makes the tenant's owner (Ready, its app with
	// ownerPerms) and a newer contender from another namespace with its own
	// working app, which wants Copilot Enabled where the owner wants it
	// Disabled. The contender ends Stalled ConflictLost unless the owner is
	// already unhealthy.
	ownerAndContender := func(ownerPerms ...string) (testTenant, *v1.TenantPurchasePolicy, *v1.TenantPurchasePolicy, string) {
		GinkgoHelper()
		t := newTenant(ownerPerms...)
		owner := policyFor(t, "owner")
		createPolicy(owner)
		var ownerGot *v1.TenantPurchasePolicy
		Eventually(func() *metav1.Time { ownerGot = get(owner); return ownerGot.Status.LastSyncTime }).
			WithTimeout(settleTimeout).WithPolling(pollEvery).ShouldNot(BeNil())
		app, secret := uuid.NewString(), "s3cr3t-"+uuid.NewString()
		Expect(sim.RegisterApp(t.ID, m365sim.App{ClientID: app, Secret: secret, Permissions: m365sim.AllPermissions})).To(Succeed())
		contender := policyFor(t, "contender")
		contender.Namespace = addNamespace(secret)
		contender.Spec.Auth.ClientID = app
		contender.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled)}}
		// creationTimestamp has one-second resolution: be strictly newer.
		Eventually(func() bool { return time.Now().Truncate(time.Second).After(ownerGot.CreationTimestamp.Time) }).
			WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
		createPolicy(contender)
		return t, owner, contender, app
	}
	// expectOwner waits until p is Ready and owns the tenant: Conflict False
	// and the tenant's Lease naming it.
	expectOwner := func(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
		GinkgoHelper()
		got := waitReady(p)
		Expect(condition(got, v1.ConflictCondition).Status).To(Equal(metav1.ConditionFalse))
		Expect(leaseHolder(p.Spec.TenantID)).To(Equal(p.Namespace + "/" + p.Name))
		return got
	}

	It("costs one Lease GET per run in steady state, and never a List", func() {
		t, owner, contender, _ := ownerAndContender()
		expectOwner(owner)
		waitStalled(contender, v1.ReasonConflictLost)

		mark := apiLog.mark()
		const runs = 3
		for range runs {
			resync(owner)
			resync(contender)
		}
		Expect(apiLog.since(mark, claimantList(t.ID))).To(BeEmpty(), "an uncached List per run costs O(N) on the API server")
		Expect(apiLog.since(mark, leaseGet(t.ID))).To(HaveLen(2*runs), "one Lease GET per run")
		Expect(apiLog.since(mark, leaseWrite(t.ID))).To(BeEmpty(), "the Lease is written only when ownership changes")
		Expect(apiLog.since(mark, policyGet(contender.Namespace))).To(BeEmpty(), "the owner does not read the losers")
		Expect(apiLog.since(mark, policyGet(owner.Namespace))).To(BeEmpty(), "a loser reads the owner from the cache, which holds every policy")
	})

	It("elects a tenant's first owner from the cache's index: no List reaches the API server", func() {
		mark := apiLog.mark()
		t, owner, contender, _ := ownerAndContender()
		expectOwner(owner)
		waitStalled(contender, v1.ReasonConflictLost)
		Expect(apiLog.since(mark, leaseWrite(t.ID))).NotTo(BeEmpty(), "the first owner was elected and recorded")
		Expect(apiLog.since(mark, claimantList(t.ID))).To(BeEmpty(), "a field-selector List scans every policy on the API server: O(N²) for a fleet's first sync")
	})

	It("hands the tenant to a working policy when the older owner is suspended", func() {
		t, owner, contender, app := ownerAndContender()
		expectOwner(owner)
		waitStalled(contender, v1.ReasonConflictLost)
		Expect(putPaths(t.ID, app)).To(BeEmpty())

		updatePolicy(owner, func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true })
		expectOwner(contender) // woken by the owner's spec change, no resync asked
		Expect(putPaths(t.ID, app)).To(Equal([]string{copilotID}))
		Expect(sim.Policy(t.ID, copilotID)).To(Equal(m365sim.PolicyEnabled))
	})

	It("hands the tenant to a working policy when the older owner is refused with 403", func() {
		t, owner, contender, app := ownerAndContender(m365sim.PermPolicyRead)
		waitStalled(owner, v1.ReasonForbidden)
		expectOwner(contender)
		// The owner never managed a write: the contender converges everything.
		want := valuesExcept(m365sim.PolicyDisabled, map[string]string{copilotID: m365sim.PolicyEnabled})
		Expect(tenantValues(t.ID)).To(Equal(want))
		Expect(putPaths(t.ID, app)).To(HaveLen(productCount - 1))

		// The refused owner reads fine but may not write: it must not take
		// the tenant back at its next run.
		got := resync(owner)
		Expect(condition(got, v1.StalledCondition).Reason).To(Equal(v1.ReasonForbidden), "still says why it cannot own")
		Expect(condition(got, v1.ConflictCondition)).To(And(HaveField("Status", metav1.ConditionTrue),
			HaveField("Message", ContainSubstring(contender.Namespace+"/"+contender.Name))))
		Expect(leaseHolder(t.ID)).To(Equal(contender.Namespace + "/" + contender.Name))
		Expect(putPaths(t.ID, owner.Spec.Auth.ClientID)).To(HaveLen(1), "only the first, refused write")
		expectOwner(resync(contender))
		Expect(tenantValues(t.ID)).To(Equal(want))
	})

	It("hands the tenant over when the owner has not synced for more than two intervals", func() {
		t, owner, contender, app := ownerAndContender()
		expectOwner(owner)
		waitStalled(contender, v1.ReasonConflictLost)

		// The owner's shard is down: nothing runs it while time passes.
		skewClock(2*owner.Spec.Interval.Duration + time.Minute)
		resync(contender)
		expectOwner(contender)
		Expect(putPaths(t.ID, app)).To(Equal([]string{copilotID}))

		// Back, and older: the owner takes its tenant back at its next run.
		resync(owner)
		expectOwner(owner)
	})

	It("lets only one of two spellings of a tenant ID own it", func() {
		t, owner, contender, app := ownerAndContender()
		expectOwner(owner)
		Expect(k8s.Delete(context.Background(), contender)).To(Succeed())
		shouting := policyFor(t, "shouting")
		shouting.Namespace, shouting.Spec.Auth = contender.Namespace, contender.Spec.Auth
		shouting.Spec.TenantID = strings.ToUpper(t.ID)
		shouting.Spec.Products = contender.Spec.Products
		if err := k8s.Create(context.Background(), shouting); err != nil {
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "rejected, as it must be, for its case: %v", err)
			return
		}
		got := waitStalled(shouting, v1.ReasonConflictLost)
		Expect(condition(got, v1.ConflictCondition).Message).To(ContainSubstring(owner.Namespace + "/" + owner.Name))
		Expect(putPaths(t.ID, app)).To(BeEmpty(), "one tenant, one writer, whatever the spelling")
	})
})

// leaseHolder is spec.holderIdentity of the tenant's Lease ("" when none).
func leaseHolder(tenantID string) string {
	GinkgoHelper()
	var l coordinationv1.Lease
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: leaseNamespace, Name: "tenant-" + strings.ToLower(tenantID)}, &l)
	if apierrors.IsNotFound(err) {
		return ""
	}
	Expect(err).NotTo(HaveOccurred())
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// claimantList matches the uncached List of a tenant's policies.
func claimantList(tenantID string) func(apiRequest) bool {
	return func(r apiRequest) bool {
		return r.Method == "GET" && strings.HasSuffix(r.Path, "/tenantpurchasepolicies") &&
			strings.Contains(strings.ToLower(r.Query.Get("fieldSelector")), strings.ToLower(tenantID))
	}
}

// leaseGet and leaseWrite match reads and writes of the tenant's Lease.
func leaseGet(tenantID string) func(apiRequest) bool {
	return func(r apiRequest) bool { return r.Method == "GET" && r.Path == leasePath(tenantID) }
}

func leaseWrite(tenantID string) func(apiRequest) bool {
	return func(r apiRequest) bool {
		return r.Method != "GET" && strings.HasPrefix(r.Path, "/apis/coordination.k8s.io/v1/namespaces/"+leaseNamespace+"/leases") &&
			(r.Path == leasePath(tenantID) || r.Method == "POST")
	}
}

func leasePath(tenantID string) string {
	return "/apis/coordination.k8s.io/v1/namespaces/" + leaseNamespace + "/leases/tenant-" + strings.ToLower(tenantID)
}

// policyGet matches a GET of one policy in namespace.
func policyGet(namespace string) func(apiRequest) bool {
	return func(r apiRequest) bool {
		return r.Method == "GET" && strings.HasPrefix(r.Path, "/apis/commerce.tenantpolicy.io/v1alpha1/namespaces/"+namespace+"/tenantpurchasepolicies/")
	}
}
