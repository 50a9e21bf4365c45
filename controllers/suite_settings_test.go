package controllers_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// simSetting is how the simulator shows and flips one tenant setting.
type simSetting struct {
	name     v1.TenantSettingName
	resource string // m365sim.Settings* (SettingsWrite.Resource)
	field    string // as SettingsWrite.Fields names it
	value    func(m365sim.TenantSettings) bool
	flip     func(bool) m365sim.TenantSettingsUpdate
	spec     func(*v1.TenantSettings) *v1.SettingPolicy
}

var simSettings = []simSetting{
	{v1.SettingEmailBasedSubscriptions, m365sim.SettingsAuthorizationPolicy, "allowedToSignUpEmailBasedSubscriptions",
		func(s m365sim.TenantSettings) bool { return s.AllowedToSignUpEmailBasedSubscriptions },
		func(b bool) m365sim.TenantSettingsUpdate {
			return m365sim.TenantSettingsUpdate{AllowedToSignUpEmailBasedSubscriptions: &b}
		},
		func(t *v1.TenantSettings) *v1.SettingPolicy { return &t.EmailBasedSubscriptions }},
	{v1.SettingEmailVerifiedUsersJoin, m365sim.SettingsAuthorizationPolicy, "allowEmailVerifiedUsersToJoinOrganization",
		func(s m365sim.TenantSettings) bool { return s.AllowEmailVerifiedUsersToJoinOrganization },
		func(b bool) m365sim.TenantSettingsUpdate {
			return m365sim.TenantSettingsUpdate{AllowEmailVerifiedUsersToJoinOrganization: &b}
		},
		func(t *v1.TenantSettings) *v1.SettingPolicy { return &t.EmailVerifiedUsersJoin }},
	{v1.SettingTrialsOnBehalfOfOrganization, m365sim.SettingsAppsAndServices, "settings.isAppAndServicesTrialEnabled",
		func(s m365sim.TenantSettings) bool { return s.IsAppAndServicesTrialEnabled },
		func(b bool) m365sim.TenantSettingsUpdate {
			return m365sim.TenantSettingsUpdate{IsAppAndServicesTrialEnabled: &b}
		},
		func(t *v1.TenantSettings) *v1.SettingPolicy { return &t.TrialsOnBehalfOfOrganization }},
	{v1.SettingOfficeStore, m365sim.SettingsAppsAndServices, "settings.isOfficeStoreEnabled",
		func(s m365sim.TenantSettings) bool { return s.IsOfficeStoreEnabled },
		func(b bool) m365sim.TenantSettingsUpdate {
			return m365sim.TenantSettingsUpdate{IsOfficeStoreEnabled: &b}
		},
		func(t *v1.TenantSettings) *v1.SettingPolicy { return &t.OfficeStore }},
}

// settingOf returns a tenant setting as the simulator holds it.
func settingOf(t testTenant, ss simSetting) bool {
	GinkgoHelper()
	st, err := sim.Settings(t.ID)
	Expect(err).NotTo(HaveOccurred())
	return ss.value(st)
}

// settingsWrites returns the settings PATCHes of a tenant as
// "resource field,field".
func settingsWrites(t testTenant) []string {
	GinkgoHelper()
	writes, err := sim.SettingsWrites(t.ID)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, w := range writes {
		out = append(out, w.Resource+" "+strings.Join(w.Fields, ","))
	}
	return out
}

// settingsGETs counts the tenant's GETs of the settings resources.
func settingsGETs(t testTenant) int {
	n := 0
	for _, e := range sim.Requests(t.ID).Entries {
		if e.Method == "GET" && (strings.HasSuffix(e.Path, "/policies/authorizationPolicy") || strings.HasSuffix(e.Path, "/admin/appsAndServices")) {
			n++
		}
	}
	return n
}

// settingStatus returns the status row of one tenant setting.
func settingStatus(p *v1.TenantPurchasePolicy, name v1.TenantSettingName) v1.TenantSettingStatus {
	GinkgoHelper()
	for _, r := range p.Status.TenantSettings {
		if r.Setting == name {
			return r
		}
	}
	Fail("status has no tenant setting " + string(name))
	return v1.TenantSettingStatus{}
}

var _ = Describe("Tenant-wide acquisition settings", func() {
	for _, ss := range simSettings {
		It("adopts "+string(ss.name)+", closes it, corrects its drift, and restores it on deletion", func() {
			t := newTenant()
			p := policyFor(t, "settings")
			p.Spec.DeletionPolicy = v1.DeletionRestore
			p.Spec.TenantSettings = &v1.TenantSettings{}
			*ss.spec(p.Spec.TenantSettings) = v1.SettingDisabled
			createPolicy(p)

			By("adoption: the tenant's value recorded, one PATCH of only that property")
			got := waitReady(p)
			row := settingStatus(got, ss.name)
			Expect(row.AdoptedValue).To(Equal(v1.SettingValue("Enabled")))
			Expect(row.Desired).To(Equal(v1.SettingValue("Disabled")))
			Expect(row.PendingValue).To(Equal(v1.SettingValue("Disabled")))
			Expect(settingOf(t, ss)).To(BeFalse(), "the simulator's value")
			Expect(settingsWrites(t)).To(Equal([]string{ss.resource + " " + ss.field}))
			Expect(settingsGETs(t)).To(Equal(1), "one GET of the one resource with a managed setting")
			Expect(got.Status.DriftHistory).To(BeEmpty(), "adoption is not drift")
			Expect(eventsOf(p, v1.EventAdopted)[v1.EventAdopted]).To(ContainElement(ContainSubstring(string(ss.name) + " as Enabled")))

			By("the next read confirms the write")
			got = resync(p)
			row = settingStatus(got, ss.name)
			Expect(row.Observed).To(Equal(v1.SettingValue("Disabled")))
			Expect(row.Corrections).To(Equal(int64(1)))
			Expect(row.LastCorrectionTime).NotTo(BeNil())
			Expect(condition(got, v1.DriftedCondition).Status).To(Equal(metav1.ConditionFalse))
			Expect(settingsWrites(t)).To(HaveLen(1), "a matching setting is not written")

			By("an admin re-opens it by hand: drift, corrected")
			_, err := sim.UpdateSettings(t.ID, ss.flip(true))
			Expect(err).NotTo(HaveOccurred())
			got = resync(p)
			Expect(got.Status.DriftHistory).To(HaveLen(1))
			Expect(got.Status.DriftHistory[0].Setting).To(Equal(ss.name))
			Expect(got.Status.DriftHistory[0].Found).To(Equal("Enabled"))
			Expect(settingOf(t, ss)).To(BeFalse(), "closed again")
			Expect(eventsOf(p, v1.EventDriftDetected)[v1.EventDriftDetected]).To(ContainElement(ContainSubstring("tenant setting " + string(ss.name))))
			got = resync(p)
			Expect(got.Status.DriftHistory[0].Action).To(Equal(v1.DriftCorrected))
			Expect(got.Status.Counters.DriftCorrected).To(Equal(int64(1)))
			Expect(settingStatus(got, ss.name).Corrections).To(Equal(int64(2)))
			Expect(eventsOf(p, v1.EventDriftCorrected)[v1.EventDriftCorrected]).To(ContainElement(ContainSubstring(string(ss.name))))

			By("Restore on deletion puts the adopted value back")
			deletePolicy(p)
			Expect(settingOf(t, ss)).To(BeTrue(), "restored to its adopted value")
		})
	}

	It("reports every setting's drift in Observe mode and writes nothing", func() {
		t := newTenant()
		p := policyFor(t, "observe")
		p.Spec.Mode = v1.ModeObserve
		p.Spec.TenantSettings = &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingEnabled,
			TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingEnabled}
		createPolicy(p)
		got := waitReady(p)
		Expect(got.Status.TenantSettings).To(HaveLen(4))
		Expect(got.Status.Summary.Managed - got.Status.Summary.Compliant - got.Status.Summary.Drifted).To(BeZero())
		d := condition(got, v1.DriftedCondition)
		Expect(d.Status).To(Equal(metav1.ConditionTrue))
		Expect(d.Message).To(ContainSubstring("tenant setting emailBasedSubscriptions is Enabled, wants Disabled"))
		Expect(d.Message).To(ContainSubstring("tenant setting trialsOnBehalfOfOrganization is Enabled, wants Disabled"))

		_, err := sim.UpdateSettings(t.ID, simSettings[3].flip(false)) // officeStore closed by hand: now differs
		Expect(err).NotTo(HaveOccurred())
		got = resync(p)
		Expect(got.Status.DriftHistory).To(HaveLen(1))
		Expect(got.Status.DriftHistory[0].Setting).To(Equal(v1.SettingOfficeStore))
		Expect(got.Status.DriftHistory[0].Action).To(Equal(v1.DriftReported))
		got = resync(p)
		Expect(got.Status.DriftHistory).To(HaveLen(1), "Observe records a transition once")
		Expect(settingsWrites(t)).To(BeEmpty(), "Observe writes nothing")
		Expect(settingsGETs(t)).To(Equal(2*3), "one GET per resource per sync")
	})

	It("sends one PATCH per differing resource, with only the differing properties", func() {
		t := newTenant()
		_, err := sim.UpdateSettings(t.ID, simSettings[1].flip(false))
		Expect(err).NotTo(HaveOccurred())
		p := policyFor(t, "floor")
		p.Spec.TenantSettings = &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, EmailVerifiedUsersJoin: v1.SettingDisabled,
			TrialsOnBehalfOfOrganization: v1.SettingDisabled, OfficeStore: v1.SettingDisabled}
		createPolicy(p)
		waitReady(p)
		Expect(settingsWrites(t)).To(ConsistOf(
			m365sim.SettingsAuthorizationPolicy+" allowedToSignUpEmailBasedSubscriptions",
			m365sim.SettingsAppsAndServices+" settings.isAppAndServicesTrialEnabled,settings.isOfficeStoreEnabled"))
		Expect(settingsGETs(t)).To(Equal(2))
		resync(p)
		Expect(settingsWrites(t)).To(HaveLen(2), "nothing differs at the next sync")
	})

	It("degrades only the settings whose permission is missing; products and the other settings are enforced", func() {
		t := newTenant(m365sim.PermPolicyRead, m365sim.PermPolicyReadWrite, m365sim.PermPolicyReadWriteAuthorization)
		p := policyFor(t, "forbidden")
		p.Spec.TenantSettings = &v1.TenantSettings{EmailBasedSubscriptions: v1.SettingDisabled, OfficeStore: v1.SettingDisabled}
		createPolicy(p)
		got := settledWith(p, v1.TenantSettingsDegradedCondition, metav1.ConditionTrue, v1.ReasonForbidden)
		Expect(condition(got, v1.TenantSettingsDegradedCondition).Message).To(ContainSubstring("missing permission OrgSettings-AppsAndServices.Read.All to read officeStore"))
		Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
		Expect(settingStatus(got, v1.SettingOfficeStore).UnknownReason).To(Equal(v1.ReasonForbidden))
		Expect(settingStatus(got, v1.SettingEmailBasedSubscriptions).PendingValue).To(Equal(v1.SettingValue("Disabled")))
		Expect(tenantValues(t.ID)).To(Equal(valuesExcept("Disabled", nil)), "products enforced")
		Expect(settingsWrites(t)).To(Equal([]string{m365sim.SettingsAuthorizationPolicy + " allowedToSignUpEmailBasedSubscriptions"}))
	})

	It("says precisely that a cloud without the beta resource does not offer it", func() {
		t := newTenant()
		mode := m365sim.AppsAndServicesNotFound
		_, err := sim.UpdateSettings(t.ID, m365sim.TenantSettingsUpdate{AppsAndServicesMode: &mode})
		Expect(err).NotTo(HaveOccurred())
		p := policyFor(t, "cloud")
		p.Spec.TenantSettings = &v1.TenantSettings{TrialsOnBehalfOfOrganization: v1.SettingDisabled}
		createPolicy(p)
		got := settledWith(p, v1.TenantSettingsDegradedCondition, metav1.ConditionTrue, v1.ReasonNotOfferedInThisCloud)
		Expect(condition(got, v1.TenantSettingsDegradedCondition).Message).To(ContainSubstring("this cloud does not offer"))
		Expect(condition(got, v1.ReadyCondition).Status).To(Equal(metav1.ConditionTrue))
	})
})
