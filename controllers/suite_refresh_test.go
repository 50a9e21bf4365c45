package controllers_test

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// Issue 10 item 15: a rotated refresh token its Secret refuses is a person's
// to fix, not a transient error retried (and re-redeemed, losing a rotation
// each time) forever.
var _ = Describe("delegated refresh token that cannot be saved", func() {
	It("stalls with RefreshTokenNotSaved, enforces with the access token it got, and redeems nothing again", func() {
		t := newTenant()
		rt, err := sim.RegisterDelegatedUser(t.ID, t.ClientID, []string{m365sim.RoleBillingAdmin})
		Expect(err).NotTo(HaveOccurred())
		immutable := true
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: "delegated"},
			Data: map[string][]byte{"refreshToken": []byte(rt)}, Immutable: &immutable}
		Expect(k8s.Create(context.Background(), secret)).To(Succeed())
		p := policyFor(t, "delegated")
		p.Spec.Auth = v1.Auth{ClientID: t.ClientID, RefreshTokenRef: &v1.SecretKeyRef{Name: "delegated", Key: "refreshToken"}}
		createPolicy(p)

		p = waitStalled(p, v1.ReasonRefreshTokenNotSaved)
		msg := condition(p, v1.StalledCondition).Message
		Expect(msg).To(And(ContainSubstring(t.Namespace+"/delegated/refreshToken"), ContainSubstring("immutable")))
		Expect(tenantValues(t.ID)).To(Equal(valuesExcept(m365sim.PolicyDisabled, nil)), "enforced with the access token of that redemption")
		Expect(sim.Requests(t.ID).Counts["authority POST token"]).To(Equal(1))

		By("the next runs use the cached access token: no redemption, still stalled")
		for range 2 {
			p = resync(p)
			Expect(condition(p, v1.StalledCondition).Reason).To(Equal(v1.ReasonRefreshTokenNotSaved))
		}
		Expect(sim.Requests(t.ID).Counts["authority POST token"]).To(Equal(1), "each redemption would rotate the token and lose one more")
		expectNoSecrets(p, rt)

		By("a new sign-in in a mutable Secret: the unsaved rotation is dropped, the policy is Ready")
		next, err := sim.RegisterDelegatedUser(t.ID, t.ClientID, []string{m365sim.RoleBillingAdmin})
		Expect(err).NotTo(HaveOccurred())
		Expect(k8s.Delete(context.Background(), secret)).To(Succeed())
		Expect(k8s.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: "delegated"},
			Data: map[string][]byte{"refreshToken": []byte(next)}})).To(Succeed())
		p = resync(p)
		Expect(condition(p, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue), condition(p, v1.ReadyCondition).Message)
		var stored corev1.Secret
		Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(secret), &stored)).To(Succeed())
		Expect(strings.TrimSpace(string(stored.Data["refreshToken"]))).To(Equal(next), "nothing to write: the access token still serves")
	})
})
