package controllers

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// recordStatus derives everything status shows from what the steps found
// and the run's outcome. It runs once per reconcile, right before the single
// status write.
func recordStatus(s *syncState, o outcome) {
	st := &s.policy.Status
	st.ObservedGeneration = s.policy.Generation
	if s.plan != nil {
		now := metav1.NewTime(s.now)
		st.LastSyncTime = &now
	}
	if v := s.policy.Annotations[v1.RequestedAtAnnotation]; v != "" {
		st.LastHandledReconcileAt = truncate(v, v1.MaxRequestedAtLength)
	}
	if o.restoreBlocked {
		st.RestoreAttempts++
	}
	setReadiness(s, o)
	setDrifted(s)
	setConflict(s)
	setTracking(s)
	setListAnomalies(s)
	setTenantSettings(s)
	dropped := st.Summary.ProductsDropped
	if s.acted {
		dropped = s.productsDropped
	}
	st.Summary = summarize(st)
	st.Summary.ProductsDropped = dropped
}

// setReadiness sets Ready, Reconciling and Stalled from the outcome, per the
// truth table: succeeded → Ready; stalled (a person must act) → Stalled;
// waiting (Microsoft asked to wait, or the controller does) or transient →
// Reconciling; suspended → Ready keeps its status and says why; a deletion →
// Ready=False reason Deleting. Reconciling and Stalled are never True
// together.
func setReadiness(s *syncState, o outcome) {
	st := &s.policy.Status
	gen := s.policy.Generation
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: truncate(msg, v1.MaxConditionMessage), ObservedGeneration: gen})
	}
	clear := func(types ...string) {
		for _, t := range types {
			meta.RemoveStatusCondition(&st.Conditions, t)
		}
	}
	reason, msg := o.ready()
	set(v1.ReadyCondition, readyStatus(o.kind, st.Conditions), reason, msg)
	switch o.kind {
	case outcomeStalled:
		set(v1.StalledCondition, metav1.ConditionTrue, o.reason, o.message)
		clear(v1.ReconcilingCondition)
	case outcomeWaiting, outcomeTransient:
		set(v1.ReconcilingCondition, metav1.ConditionTrue, o.reason, o.message)
		clear(v1.StalledCondition)
	default: // succeeded, suspended, deleted
		clear(v1.ReconcilingCondition, v1.StalledCondition)
	}
}

// readyStatus is Ready's status after a run ending as kind: True when it
// succeeded, unchanged (Unknown at first) while suspended, else False.
func readyStatus(kind outcomeKind, conds []metav1.Condition) metav1.ConditionStatus {
	switch kind {
	case outcomeSucceeded:
		return metav1.ConditionTrue
	case outcomeSuspended:
		if c := meta.FindStatusCondition(conds, v1.ReadyCondition); c != nil {
			return c.Status
		}
		return metav1.ConditionUnknown
	}
	return metav1.ConditionFalse
}

func readyMessage(s *syncState) string {
	sum := summarizeProducts(&s.policy.Status)
	settings := settingsNote(&s.policy.Status)
	if s.policy.Spec.Mode == v1.ModeObserve {
		return fmt.Sprintf("Observe mode: %d managed products read, %d differ from the policy%s; nothing written", sum.Managed, sum.Drifted, settings)
	}
	if pending := pendingWrites(&s.policy.Status); len(pending) > 0 {
		return fmt.Sprintf("%d managed products, %d unmanaged%s; written, to be confirmed by the next read: %s",
			sum.Managed, sum.Unmanaged, settings, truncateList(pending, 10))
	}
	return fmt.Sprintf("tenant matches the policy: %d managed products, %d unmanaged%s", sum.Managed, sum.Unmanaged, settings)
}

// settingsNote counts the managed tenant settings for the Ready message:
// empty when none is managed.
func settingsNote(st *v1.TenantPurchasePolicyStatus) string {
	if len(st.TenantSettings) == 0 {
		return ""
	}
	var differ, unknown int
	for _, t := range st.TenantSettings {
		switch {
		case t.UnknownReason != "" || t.Observed == "":
			unknown++
		case t.Observed != t.Desired:
			differ++
		}
	}
	note := fmt.Sprintf(", %d tenant setting(s) (%d differ", len(st.TenantSettings), differ)
	if unknown > 0 {
		note += fmt.Sprintf(", %d unknown", unknown)
	}
	return note + ")"
}

// pendingWrites lists the products and tenant settings written but not yet
// confirmed.
func pendingWrites(st *v1.TenantPurchasePolicyStatus) []string {
	var out []string
	for _, list := range [][]v1.ProductStatus{st.Products, st.OfferTypes} {
		for _, p := range list {
			if p.PendingValue != "" && p.PendingValue != p.Observed {
				out = append(out, p.ProductID+"="+p.PendingValue)
			}
		}
	}
	for _, t := range st.TenantSettings {
		if t.PendingValue != "" && t.PendingValue != t.Observed {
			out = append(out, string(t.Setting)+"="+string(t.PendingValue))
		}
	}
	return out
}

// setDrifted sets Drifted when the tenant was read: True exactly when some
// managed product differs from its desired value after this reconcile (a
// product missing from the list is not known to differ).
func setDrifted(s *syncState) {
	if !s.acted {
		return
	}
	var drifted []string
	// Tenant settings first: at most four, and the message shows ten.
	for _, t := range s.policy.Status.TenantSettings {
		if known(t) && t.Observed != t.Desired {
			note := fmt.Sprintf("tenant setting %s is %s, wants %s", t.Setting, t.Observed, t.Desired)
			if t.PendingValue == t.Desired {
				note += " (written, to be confirmed)"
			}
			drifted = append(drifted, note)
		}
	}
	for _, list := range [][]v1.ProductStatus{s.policy.Status.Products, s.policy.Status.OfferTypes} {
		for _, p := range list {
			if p.MissingSince == nil && p.Desired != "" && string(p.Desired) != p.Observed {
				note := fmt.Sprintf("%s is %s, wants %s", p.ProductID, p.Observed, p.Desired)
				if p.PendingValue == string(p.Desired) {
					note += " (written, to be confirmed)"
				}
				drifted = append(drifted, note)
			}
		}
	}
	c := metav1.Condition{Type: v1.DriftedCondition, Status: metav1.ConditionFalse, Reason: v1.ReasonInSync,
		Message: "every managed product has its desired value", ObservedGeneration: s.policy.Generation}
	if len(s.policy.Status.TenantSettings) > 0 {
		c.Message = "every managed product and tenant setting has its desired value"
	}
	if len(drifted) > 0 {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1.ReasonDriftDetected, truncateList(drifted, 10)
	}
	meta.SetStatusCondition(&s.policy.Status.Conditions, c)
}

// setConflict sets Conflict once ownership was resolved.
func setConflict(s *syncState) {
	if !s.ownerChecked {
		return
	}
	c := metav1.Condition{Type: v1.ConflictCondition, Status: metav1.ConditionFalse, Reason: v1.ReasonOwner, ObservedGeneration: s.policy.Generation,
		Message: "this policy owns the tenant"}
	switch {
	case s.conflictOwner != "":
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, v1.ReasonTenantOwned, "tenant is enforced by "+s.conflictOwner
	case s.policy.Spec.Mode == v1.ModeObserve:
		c.Message = "Observe policies never conflict"
	}
	meta.SetStatusCondition(&s.policy.Status.Conditions, c)
}

// setTracking sets SubscriptionTrackingDegraded when tracking ran or is off.
func setTracking(s *syncState) {
	t := s.tracking
	if t == nil {
		return
	}
	c := metav1.Condition{Type: v1.SubscriptionTrackingDegradedCondition, Status: metav1.ConditionFalse, ObservedGeneration: s.policy.Generation,
		Reason: v1.ReasonTrackingHealthy, Message: "subscriptions read from Microsoft Graph"}
	switch {
	case t.disabled:
		c.Reason, c.Message = v1.ReasonTrackingDisabled, "spec.subscriptions.track is false"
	case t.err != nil:
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, t.reason, "policy enforcement goes on; "+t.err.Error()
	}
	meta.SetStatusCondition(&s.policy.Status.Conditions, c)
}

// setTenantSettings sets TenantSettingsDegraded when the settings step ran
// (and removes it when spec.tenantSettings manages nothing); a run stopped
// before the step leaves it as it was.
func setTenantSettings(s *syncState) {
	o := s.tenantSettings
	if o == nil {
		return
	}
	if !o.managed {
		meta.RemoveStatusCondition(&s.policy.Status.Conditions, v1.TenantSettingsDegradedCondition)
		return
	}
	c := metav1.Condition{Type: v1.TenantSettingsDegradedCondition, Status: metav1.ConditionFalse, ObservedGeneration: s.policy.Generation,
		Reason: v1.ReasonSettingsHealthy, Message: "every managed tenant setting was read from Microsoft Graph"}
	if o.reason != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, o.reason, strings.Join(o.problems, "; ")
	}
	meta.SetStatusCondition(&s.policy.Status.Conditions, c)
}

// known tells whether the last sync read a tenant setting.
func known(t v1.TenantSettingStatus) bool { return t.UnknownReason == "" && t.Observed != "" }

// summarize counts what the print columns show: products (those missing
// from the last list count nowhere) and tenant settings (those that could
// not be read count as managed only).
func summarize(st *v1.TenantPurchasePolicyStatus) v1.Summary {
	sum := summarizeProducts(st)
	for _, t := range st.TenantSettings {
		sum.Managed++
		switch {
		case !known(t):
		case t.Observed == t.Desired:
			sum.Compliant++
		default:
			sum.Drifted++
		}
	}
	return sum
}

// summarizeProducts is summarize without the tenant settings.
func summarizeProducts(st *v1.TenantPurchasePolicyStatus) v1.Summary {
	var sum v1.Summary
	for _, list := range [][]v1.ProductStatus{st.Products, st.OfferTypes} {
		for _, p := range list {
			switch {
			case p.MissingSince != nil:
			case p.Desired == "":
				sum.Unmanaged++
			case string(p.Desired) == p.Observed:
				sum.Managed++
				sum.Compliant++
			default:
				sum.Managed++
				sum.Drifted++
			}
		}
	}
	if st.Subscriptions != nil {
		for _, sub := range st.Subscriptions.SelfService {
			if tracked(sub) {
				sum.SelfServiceSubscriptions++
			}
		}
	}
	sum.Ready = string(metav1.ConditionUnknown)
	if c := meta.FindStatusCondition(st.Conditions, v1.ReadyCondition); c != nil {
		sum.Ready = string(c.Status)
	}
	return sum
}

// activeStatus tells whether a subscription status is paid and in use
// (Enabled, or Warning: a grace period): a new one is announced, and its
// refund window warned about.
func activeStatus(status string) bool {
	return strings.EqualFold(status, "Enabled") || strings.EqualFold(status, "Warning")
}

func truncateList(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ids[:n], ", "), len(ids)-n)
}

// truncate cuts s to at most n bytes, on a character boundary (so also to
// at most n characters, the unit of the CRD's maxLength).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
