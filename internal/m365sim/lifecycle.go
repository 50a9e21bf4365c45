package m365sim

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// A subscription ends as Microsoft's do ("What happens to my data and access
// when my Microsoft 365 for business subscription ends"): Enabled →
// Warning (Expired: everyone keeps access, 30 days for most offers) →
// Suspended (Disabled: 90 days) → Deleted. Users keep their licences until
// Deleted, so subscribedSkus counts those seats under prepaidUnits.warning /
// .suspended and in consumedUnits, and nextLifecycleDateTime names the next
// step ("the date and time when the subscription will move to the next
// state", companySubscription).

// Default lifecycle periods.
const (
	DefaultWarningPeriod   = 30 * 24 * time.Hour
	DefaultSuspendedPeriod = 90 * 24 * time.Hour
)

// Lifecycle is how long an ending subscription stays Warning and Suspended.
type Lifecycle struct {
	Warning   time.Duration `json:"warning"`
	Suspended time.Duration `json:"suspended"`
}

func (lc Lifecycle) withDefaults() Lifecycle {
	if lc.Warning <= 0 {
		lc.Warning = DefaultWarningPeriod
	}
	if lc.Suspended <= 0 {
		lc.Suspended = DefaultSuspendedPeriod
	}
	return lc
}

// lifecycleOrder is the order of the statuses an ending subscription passes.
var lifecycleOrder = []string{StatusEnabled, StatusWarning, StatusSuspended, StatusDeleted}

// step moves sub to its next status at time at. Deleted takes the users'
// seats away.
func (t *tenant) step(sub *Subscription, at time.Time, lc Lifecycle) {
	switch sub.Status {
	case StatusEnabled:
		sub.Status, sub.NextLifecycleDateTime = StatusWarning, at.Add(lc.Warning)
		sub.Ending = true
	case StatusWarning:
		sub.Status, sub.NextLifecycleDateTime = StatusSuspended, at.Add(lc.Suspended)
		sub.Ending = true
	case StatusSuspended, StatusLockedOut:
		t.unassignAll(sub)
		sub.Status, sub.NextLifecycleDateTime, sub.Ending = StatusDeleted, at, false
	default:
		sub.Ending = false
	}
}

// tick moves every ending subscription whose next lifecycle time has come,
// each step at its scheduled time. The caller holds t.mu.
func (t *tenant) tick(now time.Time, lc Lifecycle) {
	for _, id := range t.subOrder {
		sub := t.subs[id]
		for sub.Ending && !now.Before(sub.NextLifecycleDateTime) {
			t.step(sub, sub.NextLifecycleDateTime.UTC(), lc)
		}
	}
}

// beginEnding starts the lifecycle of a subscription that is not ending yet:
// an Enabled one turns Warning; a Warning or Suspended one set by hand keeps
// its status and moves on after that status's full period.
func (t *tenant) beginEnding(sub *Subscription, now time.Time, lc Lifecycle) {
	switch {
	case sub.Ending:
	case sub.Status == StatusEnabled:
		t.step(sub, now, lc)
	case sub.Status == StatusWarning:
		sub.NextLifecycleDateTime, sub.Ending = now.Add(lc.Warning), true
	default:
		sub.NextLifecycleDateTime, sub.Ending = now.Add(lc.Suspended), true
	}
}

// Cancel cancels a subscription as an admin in the admin center does: it
// turns Warning with its users still licensed and then follows the
// lifecycle (Suspended, then Deleted, when the users lose the licence) on
// the simulator clock. AdvanceSubscription moves it on at once.
func (s *Server) Cancel(tenantID, subscriptionID string) (Subscription, error) {
	return s.mutateSubscription(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		t.beginEnding(sub, s.now().UTC().Truncate(time.Second), s.opts.Lifecycle)
		return nil
	})
}

// TakeOver is an admin taking control of a self-service subscription: every
// user moves onto an organisation subscription of the same SKU (which needs
// a free seat per user; otherwise ErrNotEnoughSeats and nothing changes),
// then the self-service subscription, now without users, is cancelled
// (Warning, then the lifecycle).
func (s *Server) TakeOver(tenantID, subscriptionID string) (Subscription, error) {
	return s.mutateSubscription(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		target := t.orgSubscriptionWithSeats(sub.SkuID, len(sub.AssignedUsers))
		if target == nil {
			return fmt.Errorf("%w: %s needs %d", ErrNotEnoughSeats, sub.SkuPartNumber, len(sub.AssignedUsers))
		}
		for _, id := range t.unassignAll(sub) {
			t.assign(target, id)
		}
		t.beginEnding(sub, s.now().UTC().Truncate(time.Second), s.opts.Lifecycle)
		return nil
	})
}

// orgSubscriptionWithSeats returns an enabled organisation subscription of
// skuID with at least n free seats.
func (t *tenant) orgSubscriptionWithSeats(skuID string, n int) *Subscription {
	for _, id := range t.subOrder {
		o := t.subs[id]
		if o.SkuID == skuID && o.AccountID == t.orgAccountID && o.Status == StatusEnabled && o.freeSeats() >= n {
			return o
		}
	}
	return nil
}

// AdvanceSubscription moves a subscription along Enabled → Warning →
// Suspended → Deleted now: one step when to is "", else until it has status
// to. Advancing an Enabled subscription cancels it.
func (s *Server) AdvanceSubscription(tenantID, subscriptionID, to string) (Subscription, error) {
	if to != "" && !slices.Contains(lifecycleOrder[1:], to) {
		return Subscription{}, fmt.Errorf("%w: advance to %q (want Warning, Suspended or Deleted)", ErrInvalid, to)
	}
	return s.mutateSubscription(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		now := s.now().UTC().Truncate(time.Second)
		if to != "" && slices.Index(lifecycleOrder, sub.Status) >= slices.Index(lifecycleOrder, to) {
			return fmt.Errorf("%w: %s is %s already", ErrInvalid, sub.ID, sub.Status)
		}
		for {
			t.step(sub, now, s.opts.Lifecycle)
			if to == "" || sub.Status == to || sub.Status == StatusDeleted {
				return nil
			}
		}
	})
}

// FailPayment is a failed card: the subscription turns Warning (or
// Suspended when status says so) with its users still licensed, and ends
// by the lifecycle unless renewed (Renew re-enables it).
func (s *Server) FailPayment(tenantID, subscriptionID, status string) (Subscription, error) {
	if status == "" {
		status = StatusWarning
	}
	if status != StatusWarning && status != StatusSuspended {
		return Subscription{}, fmt.Errorf("%w: a failed payment makes a subscription Warning or Suspended, not %q", ErrInvalid, status)
	}
	return s.mutateSubscription(tenantID, subscriptionID, func(t *tenant, sub *Subscription) error {
		now := s.now().UTC().Truncate(time.Second)
		if sub.Status == StatusEnabled {
			t.step(sub, now, s.opts.Lifecycle)
		}
		if status == StatusSuspended && sub.Status == StatusWarning {
			t.step(sub, now, s.opts.Lifecycle)
		}
		t.beginEnding(sub, now, s.opts.Lifecycle)
		return nil
	})
}

// adminSubscriptionWith serves a subscription action taking one string of
// the JSON body ({"to"}, {"status"}); optional: the body may be empty.
func (s *Server) adminSubscriptionWith(field string, optional bool, fn func(tenantID, subscriptionID, value string) (Subscription, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		decode := decodeBody
		if optional {
			decode = decodeOptionalBody
		}
		var b map[string]string
		if decode(w, r, &b) {
			v, err := fn(r.PathValue("tid"), r.PathValue("sid"), b[field])
			adminReply(w, http.StatusOK, v, err)
		}
	}
}
