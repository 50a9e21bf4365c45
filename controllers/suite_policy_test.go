package controllers_test

import (
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Policy enforcement as a user sees it: status, Events and what reached
// Microsoft (the simulator's request log). Every spec uses a fresh tenant.
var _ = Describe("policy enforcement", func() {
	const enabled, disabled = m365sim.PolicyEnabled, m365sim.PolicyDisabled

	Describe("adoption and convergence", func() {
		It("records the first sight of a tenant as adoption, not drift", func() {
			t := newTenant()
			p := policyFor(t, "adopt")
			createPolicy(p)

			got := waitReady(p)
			Expect(got.Status.Products).To(HaveLen(productCount))
			Expect(got.Status.AdoptedAt).NotTo(BeNil(), "when the tenant was adopted")
			for _, ps := range got.Status.Products {
				Expect(ps.AdoptedValue).To(Equal(enabled), ps.ProductID)
				Expect(ps.AdoptedAt).To(BeNil(), "%s was adopted with the tenant, at status.adoptedAt", ps.ProductID)
				Expect(ps.Observed).To(Equal(disabled), ps.ProductID)
				Expect(ps.Source).To(Equal(v1.SourceDefault), ps.ProductID)
				Expect(ps.Corrections).To(Equal(int64(1)), ps.ProductID)
				Expect(ps.LastCorrectionTime).NotTo(BeNil(), ps.ProductID)
			}
			settled := resync(p)
			Expect(settled.Status.AdoptedAt).To(Equal(got.Status.AdoptedAt), "adopted once")
			for _, ps := range settled.Status.Products {
				Expect(ps.PendingValue).To(BeEmpty(), "the next list confirmed the write of %s", ps.ProductID)
				Expect(ps.LastWriteTime).To(BeNil(), "a settled write of %s keeps only lastCorrectionTime", ps.ProductID)
				Expect(ps.LastCorrectionTime).To(Equal(productStatus(got, ps.ProductID).LastCorrectionTime), ps.ProductID)
			}
			Expect(got.Status.DriftHistory).To(BeEmpty())
			Expect(got.Status.Counters).To(Equal(v1.Counters{}))
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(got.Status.Summary).To(Equal(v1.Summary{Ready: "True", Managed: int32(productCount), Compliant: int32(productCount)}))
			Expect(got.Status.AuthenticatedAt).NotTo(BeNil())
			Expect(got.Status.LastSyncTime).NotTo(BeNil())

			ev := eventsOf(p, v1.EventAdopted)
			Expect(ev[v1.EventAdopted]).To(ConsistOf(ContainSubstring("adopted %d products", productCount)))
			Expect(ev).NotTo(HaveKey(v1.EventDriftDetected))
			Expect(ev).NotTo(HaveKey(v1.EventNewProductDetected))
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(disabled, nil)))
			expectNoSecrets(p, t.Secret)
		})

		It("converges with exactly one PUT per differing product", func() {
			t := newTenant()
			p := policyFor(t, "enforce")
			p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled)}}
			createPolicy(p)

			got := waitReady(p)
			puts := putPaths(t.ID, "")
			Expect(puts).To(HaveLen(productCount-1), "one PUT per product that differed")
			Expect(puts).NotTo(ContainElement(copilotID), "copilot was already Enabled")
			Expect(puts).To(ConsistOf(keysWithout(valuesExcept(disabled, nil), copilotID)), "no product written twice")
			counts := sim.Requests(t.ID).Counts
			Expect(counts["licensing GET products"]).To(Equal(1), "one product list")
			Expect(counts["licensing GET"]).To(Equal(1), "no per-product reads")
			Expect(counts["authority POST token"]).To(Equal(1), "one token for the licensing API")
			Expect(counts).NotTo(HaveKey("graph GET"), "subscription tracking is off")

			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(disabled, map[string]string{copilotID: enabled})))
			Expect(productStatus(got, copilotID)).To(And(
				HaveField("Source", v1.SourceRule), HaveField("Desired", v1.PolicyEnabled), HaveField("Corrections", int64(0))))
			Expect(productStatus(got, pbiProID)).To(And(
				HaveField("Corrections", int64(1)), HaveField("LastCorrectionTime", Not(BeNil()))))
		})

		It("resyncs a converged tenant with reads only", func() {
			t := newTenant()
			p := policyFor(t, "resync")
			createPolicy(p)
			before := waitReady(p)
			sim.ResetRequests(t.ID)

			got := resync(p)
			counts := sim.Requests(t.ID).Counts
			Expect(counts).NotTo(HaveKey("licensing PUT"))
			Expect(counts["licensing GET"]).To(Equal(1))
			Expect(counts).NotTo(HaveKey("authority POST"), "the token is cached")
			Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(got.Status.LastSyncTime.Time).To(BeTemporally(">=", before.Status.LastSyncTime.Time))
			Expect(productStatus(got, copilotID).Corrections).To(Equal(int64(1)), "no correction counted")
			Expect(got.Status.DriftHistory).To(BeEmpty())
		})
	})

	Describe("drift", func() {
		It("in Observe mode records a hand-made change once and writes nothing", func() {
			t := newTenant()
			p := policyFor(t, "observe")
			p.Spec.Mode = v1.ModeObserve
			p.Spec.Default = v1.RulePolicy(v1.PolicyEnabled)
			createPolicy(p)
			got := waitReady(p)
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionFalse))

			Expect(sim.SetPolicy(t.ID, copilotID, disabled)).To(Succeed())
			resync(p)
			got = resync(p)

			Expect(got.Status.DriftHistory).To(HaveLen(1), "one transition, however many syncs see it")
			d := got.Status.DriftHistory[0]
			Expect([]string{d.ProductID, d.Expected, d.Found, string(d.Action)}).To(Equal([]string{copilotID, enabled, disabled, string(v1.DriftReported)}))
			Expect(got.Status.Counters.DriftDetected).To(Equal(int64(1)))
			Expect(got.Status.Counters.DriftCorrected).To(BeZero())
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(condition(got, v1.DriftedCondition).Message).To(ContainSubstring(copilotID))
			Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(condition(got, v1.ConflictCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(got.Status.Summary.Drifted).To(Equal(int32(1)))
			Expect(kstatusOf(got)).To(Equal(status.CurrentStatus))

			Expect(putPaths(t.ID, "")).To(BeEmpty(), "Observe writes nothing")
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled))
			Expect(eventsOf(p, v1.EventDriftDetected)[v1.EventDriftDetected]).To(HaveLen(1))
		})

		It("in Enforce mode corrects a policy flipped by hand and records it once", func() {
			t := newTenant()
			p := policyFor(t, "correct")
			createPolicy(p)
			waitReady(p)

			Expect(sim.SetPolicy(t.ID, copilotID, enabled)).To(Succeed())
			sim.ResetRequests(t.ID)
			got := resync(p)

			Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled))
			Expect(putPaths(t.ID, "")).To(Equal([]string{copilotID}))
			Expect(got.Status.DriftHistory).To(HaveLen(1))
			d := got.Status.DriftHistory[0]
			Expect([]string{d.ProductID, d.Expected, d.Found, string(d.Action)}).To(Equal([]string{copilotID, disabled, enabled, string(v1.DriftCorrected)}))
			Expect(got.Status.Counters.DriftDetected).To(Equal(int64(1)))
			Expect(got.Status.Counters.DriftCorrected).To(Equal(int64(1)))
			Expect(productStatus(got, copilotID).Corrections).To(Equal(int64(2)), "adoption write + correction")
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))

			ev := eventsOf(p, v1.EventDriftDetected, v1.EventDriftCorrected) // posted concurrently: either may land first
			Expect(ev[v1.EventDriftDetected]).To(ConsistOf(ContainSubstring(copilotID)))
			Expect(ev[v1.EventDriftCorrected]).To(ConsistOf(ContainSubstring(copilotID)))

			again := resync(p)
			Expect(again.Status.DriftHistory).To(HaveLen(1), "a corrected drift is not recorded again")
		})

		It("catches a product Microsoft adds later with default", func() {
			const newID = "CFQ7TTC0NEW1"
			t := newTenant()
			p := policyFor(t, "new-product")
			createPolicy(p)
			waitReady(p)

			Expect(sim.AddProduct(t.ID, m365sim.Product{ID: newID, Name: "Contoso Agents"})).To(Succeed())
			Expect(sim.Policy(t.ID, newID)).To(Equal(enabled), "new products start Enabled")
			sim.ResetRequests(t.ID)
			got := resync(p)

			Expect(sim.Policy(t.ID, newID)).To(Equal(disabled))
			Expect(putPaths(t.ID, "")).To(Equal([]string{newID}))
			Expect(productStatus(got, newID)).To(And(HaveField("Source", v1.SourceDefault), HaveField("Observed", disabled),
				HaveField("AdoptedValue", ""), HaveField("AdoptedAt", Not(BeNil()))))
			Expect(got.Status.Counters.NewProducts).To(Equal(int64(1)))
			Expect(got.Status.Counters.DriftDetected).To(BeZero(), "a new product is not drift")
			Expect(got.Status.Summary.Managed).To(Equal(int32(productCount + 1)))
			Expect(eventsOf(p, v1.EventNewProductDetected)[v1.EventNewProductDetected]).To(ConsistOf(
				And(ContainSubstring(newID), ContainSubstring("Contoso Agents"), ContainSubstring("default sets it to Disabled"))))
		})
	})

	Describe("Unmanaged", func() {
		It("never writes a product whose rule is Unmanaged", func() {
			t := newTenant()
			p := policyFor(t, "unmanaged-rule")
			p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RuleUnmanaged}}
			createPolicy(p)
			got := waitReady(p)
			Expect(putPaths(t.ID, "")).NotTo(ContainElement(copilotID))
			Expect(putPaths(t.ID, "")).To(HaveLen(productCount - 1))
			Expect(productStatus(got, copilotID)).To(And(HaveField("Source", v1.SourceUnmanaged), HaveField("Desired", v1.PolicyValue(""))))
			Expect(got.Status.Summary.Unmanaged).To(Equal(int32(1)))

			Expect(sim.SetPolicy(t.ID, copilotID, m365sim.PolicyTrialsOnly)).To(Succeed())
			sim.ResetRequests(t.ID)
			got = resync(p)
			Expect(putPaths(t.ID, "")).To(BeEmpty())
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(m365sim.PolicyTrialsOnly))
			Expect(got.Status.DriftHistory).To(BeEmpty(), "a change to an Unmanaged product is not drift")
			Expect(productStatus(got, copilotID).Observed).To(Equal(m365sim.PolicyTrialsOnly))
		})

		It("with default Unmanaged writes only the products with a rule", func() {
			t := newTenant()
			p := policyFor(t, "unmanaged-default")
			p.Spec.Default = v1.RuleUnmanaged
			p.Spec.Products = []v1.ProductRule{{ProductID: pbiProID, Policy: v1.RulePolicy(v1.PolicyDisabled)}}
			createPolicy(p)
			got := waitReady(p)
			Expect(putPaths(t.ID, "")).To(Equal([]string{pbiProID}))
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(enabled, map[string]string{pbiProID: disabled})))
			Expect(got.Status.Summary).To(HaveField("Unmanaged", int32(productCount-1)))

			Expect(sim.AddProduct(t.ID, m365sim.Product{ID: "CFQ7TTC0NEW2"})).To(Succeed())
			Expect(sim.SetPolicy(t.ID, copilotID, disabled)).To(Succeed())
			sim.ResetRequests(t.ID)
			resync(p)
			Expect(putPaths(t.ID, "")).To(BeEmpty())
			Expect(sim.Policy(t.ID, "CFQ7TTC0NEW2")).To(Equal(enabled))
		})
	})

	Describe("temporary rules", func() {
		It("lets default take over when until has passed", func() {
			t := newTenant()
			p := policyFor(t, "until")
			until := metav1.NewTime(time.Now().Add(time.Hour))
			p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: &until}}
			createPolicy(p)
			got := waitReady(p)
			Expect(productStatus(got, copilotID)).To(And(HaveField("Source", v1.SourceRule), HaveField("Desired", v1.PolicyEnabled)))
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(enabled))

			skewClock(2 * time.Hour)
			got = resync(p)
			Expect(productStatus(got, copilotID)).To(And(HaveField("Source", v1.SourceExpiredRule), HaveField("Desired", v1.PolicyDisabled),
				HaveField("Observed", disabled)))
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled))
			Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
			Expect(got.Status.DriftHistory).To(BeEmpty(), "an expiry is not drift")
		})

		It("wakes up by itself when a rule expires", func() {
			t := newTenant()
			p := policyFor(t, "until-wake")
			until := metav1.NewTime(time.Now().Add(3 * time.Second))
			p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled), Until: &until}}
			createPolicy(p)
			got := waitReady(p)
			Expect(productStatus(got, copilotID).Source).To(Equal(v1.SourceRule))

			// No reconcile-now, no spec change, interval 1h: only the
			// scheduled wake-up at the expiry can do this.
			Eventually(func() (string, error) { return sim.Policy(t.ID, copilotID) }).
				WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Equal(disabled))
			Eventually(func() v1.DesiredSource { return productStatus(get(p), copilotID).Source }).
				WithTimeout(settleTimeout).WithPolling(pollEvery).Should(Equal(v1.SourceExpiredRule))
		})
	})

	Describe("user errors", func() {
		It("stalls on an unknown product ID but enforces every other product", func() {
			t := newTenant()
			p := policyFor(t, "unknown")
			p.Spec.Products = []v1.ProductRule{
				{ProductID: unknownID, Policy: v1.RulePolicy(v1.PolicyDisabled)},
				{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyOnlyTrials)},
			}
			createPolicy(p)
			got := waitStalled(p, v1.ReasonUnknownProduct)
			Expect(condition(got, v1.StalledCondition).Message).To(ContainSubstring(unknownID))
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(disabled, map[string]string{copilotID: m365sim.PolicyTrialsOnly})))
			Expect(putPaths(t.ID, "")).To(HaveLen(productCount))
			Expect(putPaths(t.ID, "")).NotTo(ContainElement(unknownID))
			Expect(kstatusOf(got)).To(Equal(status.FailedStatus))

			updatePolicy(p, func(p *v1.TenantPurchasePolicy) { p.Spec.Products = p.Spec.Products[1:] })
			got = waitReady(p)
			Expect(condition(got, v1.StalledCondition)).To(BeNil())
			Expect(kstatusOf(got)).To(Equal(status.CurrentStatus))
		})

		It("stalls with Microsoft's reason when the app may only read (403)", func() {
			t := newTenant(m365sim.PermPolicyRead)
			p := policyFor(t, "forbidden")
			createPolicy(p)
			got := waitStalled(p, v1.ReasonForbidden)
			Expect(condition(got, v1.StalledCondition).Message).To(And(
				ContainSubstring("403"), ContainSubstring("The caller does not have the permission or role required for this operation")))
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionTrue), "the tenant still differs")
			Expect(sim.Requests(t.ID).Counts["licensing PUT"]).To(Equal(1), "the first 403 stops the writes")
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(enabled, nil)))
			Expect(got.Status.Products).To(HaveLen(productCount), "status still shows what was read")
			Expect(eventsOf(p, v1.EventWriteFailed)[v1.EventWriteFailed]).To(ContainElement(ContainSubstring("403")))
			Expect(kstatusOf(got)).To(Equal(status.FailedStatus))
		})

		It("stalls without calling Microsoft while the Secret is missing, and recovers when it appears", func() {
			t := newTenant()
			p := policyFor(t, "late-secret")
			p.Spec.Auth.ClientSecretRef.Name = "late"
			createPolicy(p)
			got := waitStalled(p, v1.ReasonSecretNotFound)
			Expect(condition(got, v1.StalledCondition).Message).To(ContainSubstring(t.Namespace + "/late"))
			expectNoRequests(t.ID)
			Expect(got.Status.LastSyncTime).To(BeNil())

			setSecret(t.Namespace, "late", t.Secret)
			resync(p)
			got = waitReady(p)
			Expect(got.Status.Products).To(HaveLen(productCount))
			Expect(eventsOf(p, v1.EventAdopted)).NotTo(HaveKey(v1.EventNewProductDetected))
			expectNoSecrets(p, t.Secret)
		})

		It("picks up a rotated Secret and never shows it", func() {
			t := newTenant()
			p := policyFor(t, "rotate")
			createPolicy(p)
			waitReady(p)

			// The app's secret is rotated in Entra; the old one stops working.
			rotated := "s3cr3t-" + uuid.NewString()
			Expect(sim.RegisterApp(t.ID, m365sim.App{ClientID: t.ClientID, Secret: rotated, Permissions: m365sim.AllPermissions})).To(Succeed())

			wrong := "wr0ng-" + uuid.NewString()
			setSecret(t.Namespace, "app", wrong)
			resync(p)
			got := waitStalled(p, v1.ReasonAuthenticationFailed)
			Expect(condition(got, v1.StalledCondition).Message).To(ContainSubstring("invalid_client"))
			Eventually(controllerLog.String).Should(ContainSubstring(v1.ReasonAuthenticationFailed), "the refusal is logged, so the log check below means something")
			expectNoSecrets(p, t.Secret, wrong, rotated)

			setSecret(t.Namespace, "app", rotated)
			resync(p)
			got = waitReady(p)
			Expect(condition(got, v1.StalledCondition)).To(BeNil())
			tokenCallers := map[string]int{}
			for _, e := range sim.Requests(t.ID).Entries {
				if e.Route == "token" && e.Status == 200 {
					tokenCallers[e.Caller]++
				}
			}
			Expect(tokenCallers[t.ClientID]).To(Equal(2), "a new token for the rotated secret")
			expectNoSecrets(p, t.Secret, wrong, rotated)
		})
	})

	Describe("ownership", func() {
		It("lets one Enforce policy own a tenant; the newer one stalls until the owner leaves", func() {
			t := newTenant()
			owner := policyFor(t, "owner")
			createPolicy(owner)
			ownerGot := waitReady(owner)

			// The contender authenticates with its own app from another namespace.
			contenderApp, contenderSecret := uuid.NewString(), "s3cr3t-"+uuid.NewString()
			Expect(sim.RegisterApp(t.ID, m365sim.App{ClientID: contenderApp, Secret: contenderSecret, Permissions: m365sim.AllPermissions})).To(Succeed())
			contender := policyFor(t, "contender")
			contender.Namespace = addNamespace(contenderSecret)
			contender.Spec.Auth.ClientID = contenderApp
			contender.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled)}}
			// creationTimestamp has one-second resolution: be strictly newer.
			Eventually(func() bool { return time.Now().Truncate(time.Second).After(ownerGot.CreationTimestamp.Time) }).
				WithTimeout(2 * time.Second).WithPolling(50 * time.Millisecond).Should(BeTrue())
			createPolicy(contender)

			ownerName := owner.Namespace + "/" + owner.Name
			got := waitStalled(contender, v1.ReasonConflictLost)
			Expect(condition(got, v1.ConflictCondition)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Message", ContainSubstring(ownerName))))
			Expect(condition(got, v1.StalledCondition).Message).To(ContainSubstring(ownerName))
			Expect(putPaths(t.ID, contenderApp)).To(BeEmpty(), "the loser writes nothing")
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled))

			watcher := policyFor(t, "watcher")
			watcher.Spec.Mode = v1.ModeObserve
			createPolicy(watcher)
			w := waitReady(watcher)
			Expect(condition(w, v1.ConflictCondition).Status).To(Equal(metav1.ConditionFalse))
			o := resync(owner)
			Expect(condition(o, v1.ConflictCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(condition(o, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))

			deletePolicy(owner)
			got = waitReady(contender)
			Expect(condition(got, v1.ConflictCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(putPaths(t.ID, contenderApp)).To(Equal([]string{copilotID}))
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(enabled))
			Expect(got.Status.Products).To(HaveLen(productCount))
			Expect(got.Status.Counters.NewProducts).To(BeZero(), "taking over is adoption, not new products")
			Expect(productStatus(got, pbiProID).AdoptedValue).To(Equal(disabled))
			ev := eventsOf(contender, v1.EventAdopted)
			Expect(ev).NotTo(HaveKey(v1.EventNewProductDetected))
		})
	})

	Describe("deletion", func() {
		It("with Orphan leaves the tenant as it is", func() {
			t := newTenant()
			p := policyFor(t, "orphan")
			createPolicy(p)
			waitReady(p)
			sim.ResetRequests(t.ID)

			deletePolicy(p)
			Expect(putPaths(t.ID, "")).To(BeEmpty())
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(disabled, nil)))
		})

		It("with Restore puts back the values seen at adoption", func() {
			const laterID = "CFQ7TTC0NEW3"
			t := newTenant()
			p := policyFor(t, "restore")
			p.Spec.DeletionPolicy = v1.DeletionRestore
			createPolicy(p)
			waitReady(p)
			Expect(sim.AddProduct(t.ID, m365sim.Product{ID: laterID})).To(Succeed())
			resync(p)
			Expect(sim.Policy(t.ID, laterID)).To(Equal(disabled))

			deletePolicy(p)
			Expect(tenantValues(t.ID)).To(Equal(valuesExcept(enabled, map[string]string{laterID: disabled})),
				"adopted products back to Enabled; the later one left alone")
			Expect(eventsOf(p, v1.EventRestored)[v1.EventRestored]).To(ConsistOf(ContainSubstring("restored %d products", productCount)))
		})
	})

	Describe("suspend", func() {
		It("stops every call to Microsoft and keeps Ready", func() {
			t := newTenant()
			p := policyFor(t, "suspend")
			createPolicy(p)
			waitReady(p)

			updatePolicy(p, func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = true })
			got := settledWith(p, v1.ReadyCondition, metav1.ConditionTrue, v1.ReasonSuspended)
			Expect(condition(got, v1.ReadyCondition).Message).To(ContainSubstring("suspend"))
			Expect(sim.SetPolicy(t.ID, copilotID, enabled)).To(Succeed())
			sim.ResetRequests(t.ID)

			got = resync(p)
			expectNoRequests(t.ID)
			Expect(condition(got, v1.ReadyCondition)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1.ReasonSuspended)))
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(enabled))

			updatePolicy(p, func(p *v1.TenantPurchasePolicy) { p.Spec.Suspend = false })
			got = waitReady(p)
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(disabled), "resumed and corrected")
			Expect(got.Status.Counters.DriftCorrected).To(Equal(int64(1)))
		})
	})

	Describe("throttling and transient errors", func() {
		It("waits out a 429 while the spec changes, sending nothing early", func() {
			t := newTenant()
			p := policyFor(t, "throttled")
			createPolicy(p)
			waitReady(p)

			Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: 429, RetryAfter: "3", Count: 1})).To(Succeed())
			requestReconcile(p)
			got := settledWith(p, v1.ReconcilingCondition, metav1.ConditionTrue, v1.ReasonThrottled)
			Expect(condition(got, v1.ReadyCondition)).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1.ReasonThrottled)))
			Expect(condition(got, v1.StalledCondition)).To(BeNil())
			Expect(kstatusOf(got)).To(Equal(status.InProgressStatus))

			updatePolicy(p, func(p *v1.TenantPurchasePolicy) {
				p.Spec.Products = []v1.ProductRule{{ProductID: copilotID, Policy: v1.RulePolicy(v1.PolicyEnabled)}}
			})
			got = waitReady(p)
			Expect(sim.Policy(t.ID, copilotID)).To(Equal(enabled))
			Expect(kstatusOf(got)).To(Equal(status.CurrentStatus))

			log := sim.Requests(t.ID)
			Expect(log.EarlyRequests).To(BeZero())
			var throttledAt, nextAt time.Time
			for _, e := range log.Entries {
				switch {
				case e.Endpoint != m365sim.EndpointLicensing:
				case e.Status == 429:
					throttledAt = e.Time
				case !throttledAt.IsZero() && nextAt.IsZero():
					nextAt = e.Time
				}
			}
			Expect(throttledAt).NotTo(BeZero(), "the 429 was sent")
			Expect(nextAt.Sub(throttledAt)).To(BeNumerically(">=", 3*time.Second), "next licensing request only after Retry-After")
		})

		It("reports kstatus InProgress while retrying, Current when converged, Failed when stalled", func() {
			t := newTenant()
			p := policyFor(t, "kstatus")
			createPolicy(p)
			Expect(kstatusOf(waitReady(p))).To(Equal(status.CurrentStatus))

			Expect(sim.InjectFault(t.ID, m365sim.Fault{Endpoint: m365sim.EndpointLicensing, Status: 503})).To(Succeed())
			requestReconcile(p)
			got := settledWith(p, v1.ReconcilingCondition, metav1.ConditionTrue, v1.ReasonTransientError)
			Expect(condition(got, v1.StalledCondition)).To(BeNil())
			Expect(kstatusOf(got)).To(Equal(status.InProgressStatus))

			sim.ClearFaults(t.ID)
			got = waitReady(p)
			Expect(condition(got, v1.ReconcilingCondition)).To(BeNil())
			Expect(kstatusOf(got)).To(Equal(status.CurrentStatus))

			updatePolicy(p, func(p *v1.TenantPurchasePolicy) { p.Spec.Auth.ClientSecretRef.Name = "gone" })
			got = waitStalled(p, v1.ReasonSecretNotFound)
			Expect(kstatusOf(got)).To(Equal(status.FailedStatus))
		})
	})
})

// keysWithout returns the keys of m except skip.
func keysWithout(m map[string]string, skip string) []string {
	var out []string
	for k := range m {
		if k != skip {
			out = append(out, k)
		}
	}
	return out
}
