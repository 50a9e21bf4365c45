package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
)

// PartnerAPI connects to a Microsoft partner's Graph API.
type PartnerAPI interface {
	// Partner returns the customer listing of partnerTenantID, every call
	// authenticated with cred.
	Partner(partnerTenantID string, cred azcore.TokenCredential) PartnerCustomers
}

// PartnerCustomers lists one partner's customers. Read only. ListInfo
// counts the entries of the answer that were not returned.
type PartnerCustomers interface {
	ListDelegatedAdminCustomers(ctx context.Context) ([]graph.Customer, m365.ListInfo, error)
}

// Partner connects the real Graph client to PartnerAPI: the customer
// listing shares the not-before gate with every other call of the tenant.
func (a graphAPI) Partner(partnerTenantID string, cred azcore.TokenCredential) PartnerCustomers {
	return a.c.For(partnerTenantID, cred)
}

// Discovery timing.
const (
	// defaultDiscoveryInterval is spec.discovery...interval's default.
	defaultDiscoveryInterval = time.Hour
	// discoveryRetryBase is the first retry of a failed discovery; retries
	// double up to the interval.
	discoveryRetryBase = 30 * time.Second
)

// Drop bounds' defaults (spec.discovery.maxDropPercent and maxDropCount).
const (
	defaultMaxDropPercent = 20
	defaultMaxDropCount   = 2
)

// discoverCustomers lists the partner's customers when a discovery is due
// (never listed, the partner changed, the interval passed, a retry is due,
// or the reconcile-now annotation asked), and folds them into
// status.discovery (mergeDiscovery): new customers are added, missing ones
// counted, and pruned after two trusted discoveries in a row. A failure
// keeps the last result, so the set goes on with the customers it knew;
// the run goes on either way. Nothing is listed on the other runs (a
// child's status change), so the floor is one paged list per interval.
//
// Sets status.discovery and the DiscoveryFailed and PruneHeld conditions;
// queues CustomerDiscovered, CustomerMissing, PruneHeld and DiscoveryFailed Events.
func (r *TenantPurchasePolicySetReconciler) discoverCustomers(ctx context.Context, s *setState) error {
	d := s.set.Spec.Discovery
	if d == nil || d.DelegatedAdminCustomers == nil {
		s.set.Status.Discovery = nil
		meta.RemoveStatusCondition(&s.set.Status.Conditions, v1.DiscoveryFailedCondition)
		return nil
	}
	src := d.DelegatedAdminCustomers
	if r.staleDiscovery(s) {
		// This run's copy predates a discovery already recorded: its
		// status patch meets a conflict and the run is repeated on the
		// fresh copy, which knows the discovery.
		return nil
	}
	due, next := discoveryDue(s.set, s.now, s.requested())
	if !due {
		s.wake(next)
		return nil
	}
	st := s.set.Status.Discovery
	if st == nil || st.PartnerTenantID != src.PartnerTenantID {
		st = &v1.DiscoveryStatus{PartnerTenantID: src.PartnerTenantID}
		s.set.Status.Discovery = st
	}
	st.LastAttemptTime = ptr.To(metav1.NewTime(s.now))
	customers, info, err := r.listCustomers(ctx, s, src)
	if err == nil && len(customers) > v1.MaxDiscoveredTenants {
		err = stalled(v1.ReasonTooManyCustomers, "partner %s lists %d customers; a set holds at most %d: split them over sets with exclude",
			src.PartnerTenantID, len(customers), v1.MaxDiscoveredTenants)
	}
	if err != nil {
		st.ConsecutiveFailures++
		s.discoveryFailed(discoveryError(err, src.PartnerTenantID))
		s.wake(nextDiscovery(s.set))
		return nil
	}
	st.ConsecutiveFailures = 0
	ids := make([]string, 0, len(customers))
	for _, c := range customers {
		ids = append(ids, c.TenantID)
	}
	res := mergeDiscovery(st, ids, info.Invalid, s.now, dropBounds(d))
	s.discoverySucceeded(res, len(ids))
	s.wake(nextDiscovery(s.set))
	return nil
}

// listCustomers authenticates in the partner tenant (discovery's auth, or
// the template's) exactly as a policy does, and lists its customers. A
// delegated login whose rotated refresh token its Secret refused fails the
// discovery (Stalled RefreshTokenNotSaved, as a policy): the set goes on
// with the customers it knew until a person fixes the Secret.
func (r *TenantPurchasePolicySetReconciler) listCustomers(ctx context.Context, s *setState, src *v1.DelegatedAdminCustomersDiscovery) ([]graph.Customer, m365.ListInfo, error) {
	a := s.set.Spec.Template.Auth
	if src.Auth != nil {
		a = *src.Auth
	}
	cred, _, err := r.Credentials.tokenCredential(ctx, s.set.Namespace, src.PartnerTenantID, a)
	if err != nil {
		return nil, m365.ListInfo{}, err
	}
	customers, info, err := r.Partners.Partner(src.PartnerTenantID, cred).ListDelegatedAdminCustomers(ctx)
	if err == nil {
		err = refreshTokenSaved(ctx, cred)
	}
	return customers, info, err
}

// discoveryError turns a failed listing into the reason and message the set
// shows: a 403 names the permission the partner's app (or admin) lacks.
func discoveryError(err error, partner string) error {
	err = classify(err)
	if st, ok := asStalled(err); ok && st.reason == v1.ReasonForbidden {
		return stalled(v1.ReasonDiscoveryForbidden, "partner tenant %s refused to list its customers: the app needs the Graph permission DelegatedAdminRelationship.Read.All "+
			"(a delegated login: the Admin Agent or Global Administrator role): %s", partner, st.message)
	}
	return err
}

// staleDiscovery tells whether the set was read before this process's last
// recorded discovery of it reached the cache.
func (r *TenantPurchasePolicySetReconciler) staleDiscovery(s *setState) bool {
	t, ok := r.discovered.Load(s.set.UID)
	if !ok || s.requested() {
		return false
	}
	st := s.set.Status.Discovery
	return st == nil || st.LastAttemptTime == nil || st.LastAttemptTime.Time.Before(t.(time.Time))
}

// discoveryDue tells whether customers are listed in this run and, if not,
// when next.
func discoveryDue(set *v1.TenantPurchasePolicySet, now time.Time, requested bool) (bool, time.Time) {
	st := set.Status.Discovery
	src := set.Spec.Discovery.DelegatedAdminCustomers
	if requested || st == nil || st.LastAttemptTime == nil || st.PartnerTenantID != src.PartnerTenantID {
		return true, now
	}
	next := nextDiscovery(set)
	return !now.Before(next), next
}

// nextDiscovery is when the next discovery is due: interval after the last
// attempt, or sooner after a failure that may pass by itself (30s, doubling
// up to interval). A failure a person must fix (credentials, permission)
// waits the interval, like a stalled policy; the reconcile-now annotation
// retries at once.
func nextDiscovery(set *v1.TenantPurchasePolicySet) time.Time {
	st := set.Status.Discovery
	interval := set.Spec.Discovery.DelegatedAdminCustomers.Interval.Duration
	if interval <= 0 {
		interval = defaultDiscoveryInterval
	}
	wait := interval
	failed := meta.FindStatusCondition(set.Status.Conditions, v1.DiscoveryFailedCondition)
	if n := st.ConsecutiveFailures; n > 0 && !discoveryStalls(failed) {
		wait = min(interval, discoveryRetryBase<<min(n-1, 16))
	}
	return st.LastAttemptTime.Add(wait)
}

// dropBounds returns spec.discovery's drop bounds with their defaults.
func dropBounds(d *v1.SetDiscovery) dropBound {
	return dropBound{percent: ptr.Deref(d.MaxDropPercent, defaultMaxDropPercent), count: ptr.Deref(d.MaxDropCount, defaultMaxDropCount)}
}

// dropBound: a discovery that misses more than percent of the customers the
// previous one listed, and more than count of them, is not trusted.
type dropBound struct{ percent, count int32 }

// discoveryMerge is what one successful listing changed.
type discoveryMerge struct {
	// added are customers listed for the first time; missing are known
	// customers this listing did not list (newly or again); pruned are
	// those missing for pruneAfterMisses trusted discoveries, dropped from
	// status.
	added, missing, pruned []string
	// hold is the PruneHeld reason when the listing is not trusted (empty,
	// or too many missing), with its message; empty when trusted.
	hold, holdMessage string
}

// mergeDiscovery folds a successful listing into st. Never prune on doubt:
// an empty listing, one with invalid entries (a null item or one without a
// tenant ID may hide a customer), or one that misses more known customers
// than the drop bounds allow, is not trusted: it adds the new customers it
// names but counts no one as missing. A trusted listing marks each known customer it
// misses (missed+1, lastSeen kept) and drops those missed pruneAfterMisses
// times; listing a customer again resets it. lastDiscoveryTime and count
// follow every successful listing.
func mergeDiscovery(st *v1.DiscoveryStatus, found []string, invalid int, now time.Time, b dropBound) discoveryMerge {
	var m discoveryMerge
	listed := make(map[string]bool, len(found))
	for _, id := range found {
		listed[id] = true
	}
	present, newlyMissing := 0, 0
	for _, t := range st.Tenants {
		if t.Missed == 0 {
			present++
			if !listed[t.TenantID] {
				newlyMissing++
			}
		}
	}
	switch {
	case len(found) == 0 && present > 0:
		m.hold, m.holdMessage = v1.ReasonDiscoveryEmpty,
			fmt.Sprintf("the partner listed no customer, the previous discovery %d: nothing is pruned until a discovery lists them again", present)
	case invalid > 0 && newlyMissing > 0:
		m.hold, m.holdMessage = v1.ReasonDiscoveryIncomplete,
			fmt.Sprintf("the answer held %d entries without a usable tenant ID and missed %d known customers: nothing is pruned until a complete answer", invalid, newlyMissing)
	case newlyMissing > int(b.count) && newlyMissing*100 > int(b.percent)*present:
		m.hold, m.holdMessage = v1.ReasonTooManyMissing,
			fmt.Sprintf("%d of the %d customers the previous discovery listed are missing (more than %d%% and more than %d): nothing is pruned; "+
				"if they really left, raise spec.discovery.maxDropPercent to %d or maxDropCount to %d",
				newlyMissing, present, b.percent, b.count, (newlyMissing*100+present-1)/present, newlyMissing)
	}
	known := make(map[string]bool, len(st.Tenants))
	kept := make([]v1.DiscoveredTenant, 0, len(st.Tenants)+len(found))
	lastListed := st.LastDiscoveryTime
	for _, t := range st.Tenants {
		known[t.TenantID] = true
		switch {
		case listed[t.TenantID]:
			t.Missed, t.LastSeen = 0, nil
		case m.hold != "":
		default:
			if t.Missed == 0 && lastListed != nil {
				t.LastSeen = lastListed.DeepCopy()
			}
			t.Missed++
			m.missing = append(m.missing, t.TenantID)
			if t.Missed >= pruneAfterMisses {
				m.pruned = append(m.pruned, t.TenantID)
				continue
			}
		}
		kept = append(kept, t)
	}
	for _, id := range found {
		if !known[id] {
			known[id] = true
			kept = append(kept, v1.DiscoveredTenant{TenantID: id, FirstSeen: metav1.NewTime(now)})
			m.added = append(m.added, id)
		}
	}
	slices.SortFunc(kept, func(a, b v1.DiscoveredTenant) int { return strings.Compare(a.TenantID, b.TenantID) })
	st.Tenants = kept
	st.LastDiscoveryTime = ptr.To(metav1.NewTime(now))
	st.Count = int32(len(found))
	return m
}

// discoverySucceeded records a successful listing: DiscoveryFailed=False,
// PruneHeld from the merge, and the Events a person should see.
func (s *setState) discoverySucceeded(m discoveryMerge, listed int) {
	partner := s.set.Spec.Discovery.DelegatedAdminCustomers.PartnerTenantID
	s.setCondition(v1.DiscoveryFailedCondition, metav1.ConditionFalse, v1.ReasonDiscoverySucceeded,
		fmt.Sprintf("partner %s listed %d customers", partner, listed))
	if len(m.added) > 0 {
		s.event(eventNormal, v1.EventCustomerDiscovered, "partner %s has %d new customers: %s", partner, len(m.added), truncateList(m.added, 10))
	}
	if len(m.missing) > 0 {
		s.event(eventNormal, v1.EventCustomerMissing, "partner %s did not list %d known customers: %s; a customer missing from %d discoveries in a row is pruned",
			partner, len(m.missing), truncateList(m.missing, 10), pruneAfterMisses)
	}
	if m.hold != "" {
		s.pruneHeld = &heldPrune{reason: m.hold, message: m.holdMessage}
		s.event(eventWarning, v1.EventPruneHeld, "%s", m.holdMessage)
		return
	}
	s.pruneHeld = &heldPrune{}
}

// discoveryFailed records a failed listing: DiscoveryFailed=True with the
// error's reason, PruneHeld=True, and a Warning when the failure is new.
func (s *setState) discoveryFailed(err error) {
	reason, message := errorReason(err)
	message = "discovery failed; the set goes on with the customers the last discovery listed: " + message
	if c := meta.FindStatusCondition(s.base.Status.Conditions, v1.DiscoveryFailedCondition); c == nil || c.Status != metav1.ConditionTrue || c.Reason != reason {
		s.event(eventWarning, v1.EventDiscoveryFailed, "%s", message)
	}
	s.setCondition(v1.DiscoveryFailedCondition, metav1.ConditionTrue, reason, message)
	s.pruneHeld = &heldPrune{reason: v1.ReasonDiscoveryFailedHold, message: "the latest discovery failed: nothing is pruned for a missing customer"}
}

// errorReason is the reason and message a run's error shows with: a stall's
// own, Throttled, or TransientError.
func errorReason(err error) (string, string) {
	o := errorOutcome(err)
	return o.reason, o.message
}

// discoveryStalls tells whether the DiscoveryFailed condition says a person
// must act (credentials, permission, too many customers) rather than that
// discovery is retrying (Throttled, TransientError).
func discoveryStalls(c *metav1.Condition) bool {
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason != v1.ReasonThrottled && c.Reason != v1.ReasonTransientError
}
