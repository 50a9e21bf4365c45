package controllers_test

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Timing of the policy specs: how long the controller may take to act, and
// how often the direct client looks.
const (
	settleTimeout = 20 * time.Second
	pollEvery     = 100 * time.Millisecond
)

// Product IDs the specs name (see m365sim.DefaultProducts).
const (
	copilotID = "CFQ7TTC0MM8R"
	pbiProID  = "CFQ7TTC0H9MP"
	teamsExID = "CFQ7TTC0J1FV"
	// unknownID matches the productID pattern but no tenant has it.
	unknownID = "CFQ7TTC0ZZZ9"
)

// productCount is the number of products a fresh simulator tenant has.
var productCount = len(m365sim.DefaultProducts())

// createPolicy creates p through the direct client.
func createPolicy(p *v1.TenantPurchasePolicy) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), p)).To(Succeed())
}

// updatePolicy applies edit to the current policy, retrying on conflicts
// (the controller patches status concurrently).
func updatePolicy(p *v1.TenantPurchasePolicy, edit func(*v1.TenantPurchasePolicy)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &v1.TenantPurchasePolicy{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), cur); err != nil {
			return err
		}
		edit(cur)
		return k8s.Update(context.Background(), cur)
	})).To(Succeed())
}

// settledWith waits until the controller has observed the policy's current
// generation and its condition t has status and reason, and returns the
// policy as it was then.
func settledWith(p *v1.TenantPurchasePolicy, t string, st metav1.ConditionStatus, reason string) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	var out *v1.TenantPurchasePolicy
	Eventually(func(g Gomega) {
		out = get(p)
		g.Expect(out.Status.ObservedGeneration).To(Equal(out.Generation), "observedGeneration")
		c := condition(out, t)
		g.Expect(c).NotTo(BeNil(), "condition %s", t)
		g.Expect(c.Status).To(Equal(st), "%s: %s", t, c.Message)
		g.Expect(c.Reason).To(Equal(reason), "%s: %s", t, c.Message)
	}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
	return out
}

// waitReady waits until the policy is Ready (Succeeded) at its current
// generation.
func waitReady(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	return settledWith(p, v1.ReadyCondition, metav1.ConditionTrue, v1.ReasonSucceeded)
}

// waitStalled waits until the policy is Stalled with reason.
func waitStalled(p *v1.TenantPurchasePolicy, reason string) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	out := settledWith(p, v1.StalledCondition, metav1.ConditionTrue, reason)
	Expect(condition(out, v1.ReadyCondition).Status).To(Equal(metav1.ConditionFalse))
	Expect(condition(out, v1.ReconcilingCondition)).To(BeNil(), "Reconciling next to Stalled")
	return out
}

// resync asks for a reconcile-now and returns the policy once handled.
func resync(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	GinkgoHelper()
	return handled(p, requestReconcile(p))
}

// productStatus returns the status entry of product id.
func productStatus(p *v1.TenantPurchasePolicy, id string) v1.ProductStatus {
	GinkgoHelper()
	for _, ps := range p.Status.Products {
		if ps.ProductID == id {
			return ps
		}
	}
	Fail("status has no product " + id)
	return v1.ProductStatus{}
}

// tenantValues returns every product's policy value in the simulator.
func tenantValues(tenantID string) map[string]string {
	GinkgoHelper()
	products, err := sim.Products(tenantID)
	Expect(err).NotTo(HaveOccurred())
	out := make(map[string]string, len(products))
	for _, p := range products {
		out[p.ID] = p.PolicyValue
	}
	return out
}

// valuesExcept is every default product at value, except the given overrides.
func valuesExcept(value string, overrides map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range m365sim.DefaultProducts() {
		out[p.ID] = value
	}
	for k, v := range overrides {
		out[k] = v
	}
	return out
}

// putPaths returns the product (or offer type) of every PUT a tenant
// received, optionally only those of one client ID.
func putPaths(tenantID, caller string) []string {
	var out []string
	for _, e := range sim.Requests(tenantID).Entries {
		if e.Method == "PUT" && (caller == "" || strings.EqualFold(e.Caller, caller)) {
			out = append(out, e.Path[strings.LastIndex(e.Path, "/")+1:])
		}
	}
	return out
}

// expectNoRequests asserts the simulator received nothing for the tenant.
func expectNoRequests(tenantID string) {
	GinkgoHelper()
	Expect(sim.Requests(tenantID).Counts).To(BeEmpty(), "requests to the simulator")
}

// eventsOf waits until the policy has an Event of every reason given (the
// recorder posts Events concurrently, so one run's Events may land in any
// order), and returns all its Events by reason.
func eventsOf(p *v1.TenantPurchasePolicy, reasons ...string) map[string][]string {
	GinkgoHelper()
	var out map[string][]string
	Eventually(func(g Gomega) {
		out = events(p)
		for _, reason := range reasons {
			g.Expect(out).To(HaveKey(reason))
		}
	}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Succeed())
	return out
}

// kstatusOf computes a policy's (or a set's) kstatus, as Argo CD, Flux and
// kubectl wait would.
func kstatusOf(p runtime.Object) status.Status {
	GinkgoHelper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

// expectNoSecrets asserts that no secret string appears in the policy's
// status, in any of its Events, or in anything the controller logged.
func expectNoSecrets(p *v1.TenantPurchasePolicy, secrets ...string) {
	GinkgoHelper()
	expectNoSecretsIn(get(p).Status, events(p), secrets...)
}

// expectNoSecretsIn asserts that no secret string appears in status, in
// events or in anything the controller logged.
func expectNoSecretsIn(status any, events map[string][]string, secrets ...string) {
	GinkgoHelper()
	statusJSON, err := json.Marshal(status)
	Expect(err).NotTo(HaveOccurred())
	notes, err := json.Marshal(events)
	Expect(err).NotTo(HaveOccurred())
	for _, s := range secrets {
		Expect(string(statusJSON)).NotTo(ContainSubstring(s), "a secret in status")
		Expect(string(notes)).NotTo(ContainSubstring(s), "a secret in an Event")
		Expect(controllerLog.String()).NotTo(ContainSubstring(s), "a secret in the controller's log")
	}
}

// addNamespace creates a namespace holding Secret "app" with secret, for a
// second policy of a tenant.
func addNamespace(secret string) string {
	GinkgoHelper()
	ns := "t-" + uuid.NewString()[:8]
	Expect(k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	setSecret(ns, "app", secret)
	return ns
}

// setSecret creates or replaces Secret name's clientSecret.
func setSecret(ns, name, value string) {
	GinkgoHelper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), s)
		if apierrors.IsNotFound(err) {
			s.StringData = map[string]string{"clientSecret": value}
			return k8s.Create(context.Background(), s)
		}
		if err != nil {
			return err
		}
		s.Data = map[string][]byte{"clientSecret": []byte(value)}
		return k8s.Update(context.Background(), s)
	})).To(Succeed())
}

// deletePolicy deletes the policy and waits until it is gone (its finalizer
// released).
func deletePolicy(p *v1.TenantPurchasePolicy) {
	GinkgoHelper()
	Expect(k8s.Delete(context.Background(), p)).To(Succeed())
	Eventually(func() bool {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(p), &v1.TenantPurchasePolicy{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(settleTimeout).WithPolling(pollEvery).Should(BeTrue(), "policy still exists")
}

// skewClock moves the reconciler's clock by d for the rest of the spec.
func skewClock(d time.Duration) {
	clockSkew.Store(int64(d))
	DeferCleanup(func() { clockSkew.Store(0) })
}
