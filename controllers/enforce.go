package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// Here a run acts on the tenant in three phases. decide (decide.go) says what
// each difference between the plan and the tenant is: adoption, a new
// product, drift, the confirmation of an earlier write, a product missing from
// the list; and which products Enforce mode writes. recordAdoption writes the
// adoption values to status before the first write. writeAll sends the
// writes, a few at a time (write.go), and record turns their answers into
// status.

// writeFunc sets one product or offer type and returns the item Microsoft
// answered with: TenantPolicies.SetProduct or SetOfferType.
type writeFunc func(ctx context.Context, id, value string) (*licensing.Item, error)

// Bounds on what the controller repeats about one product.
const (
	// maxUnconfirmedWrites is how many accepted writes of one value in a row
	// a read may contradict before the value is held (WriteNotApplied).
	maxUnconfirmedWrites = 3
	// holdExpiry is how long a rejected or held value waits before it is
	// written again.
	holdExpiry = 24 * time.Hour
	// A product missing from the product list keeps its entry until it has
	// been missing for missingSyncs syncs and for missingFor, whichever is
	// longer.
	missingSyncs = 3
	missingFor   = time.Hour
	// readSettleTime is how long after a write a list may still show the old
	// value (Microsoft's eventual consistency: "for seconds"); such a list
	// is no evidence about the write.
	readSettleTime = time.Minute
)

// change is what one run does about one product (or offer type): decided
// before any write, then completed with the write's answer.
type change struct {
	t plan.Target
	// st is the product's status entry as this run leaves it.
	st v1.ProductStatus
	// recorded: st goes into status. False for a product beyond the bounds of
	// status (enforced, not recorded) and for an entry missing long enough
	// to be removed.
	recorded bool
	// missing: the product list lacked the product; nothing is written.
	missing bool
	// adopted: this run recorded the product's adoption value.
	adopted bool
	// drift is a transition this run found; correcting is the drift record a
	// confirmed write completes (drift, or an earlier record whose
	// correction failed or is pending).
	drift, correcting *v1.DriftRecord
	// set writes the product; nil when nothing is to be written.
	set writeFunc

	// The write: whether it was sent, Microsoft's answer, the error.
	sent bool
	echo *licensing.Item
	err  error
}

// act compares the plan with what status last recorded, records adoption,
// new products, drift and the confirmation of earlier writes, and in Enforce
// mode writes exactly the products that differ (not values Microsoft
// rejected, nor values it kept not applying, nor products missing from the
// list). Observe mode writes nothing. A throttle, an auth failure or a
// transient error stops the writes not yet sent; status still records
// everything observed.
//
// Sets status.products, status.offerTypes, status.driftHistory, counters
// (and, before the first write of an adoption, writes status once more:
// recordAdoption).
func (r *TenantPurchasePolicyReconciler) act(ctx context.Context, s *syncState) error {
	p := s.policy
	s.acted = true
	var setProduct, setOffer writeFunc // nil in Observe mode: nothing is written
	if p.Spec.Mode == v1.ModeEnforce {
		setProduct, setOffer = s.policies.SetProduct, s.policies.SetOfferType
	}
	// The policy adopts the tenant the first time it gets to record the
	// products, which may be later than its first read (a lost conflict or
	// a throttle stops a run before act).
	adopting := len(p.Status.Products) == 0
	products := r.decide(s, decideList{targets: s.plan.Products, prev: p.Status.Products, adopting: adopting, withTenant: adopting,
		max: v1.MaxProducts, write: setProduct, keepMissing: func(string) bool { return true }})
	if adopting && len(products) > 0 {
		p.Status.AdoptedAt = &metav1.Time{Time: s.now}
	}
	sort.SliceStable(products, func(i, j int) bool { return products[i].t.ID < products[j].t.ID })
	// Offer types are read only while a rule names them, so one not seen
	// before is adopted, never reported as new from Microsoft; one whose rule
	// is gone is forgotten.
	offers := r.decide(s, decideList{targets: s.plan.OfferTypes, prev: p.Status.OfferTypes, adopting: true,
		max: v1.MaxOfferTypes, write: setOffer, keepMissing: s.hasOfferRule})
	s.productsDropped = dropped(products) + s.unlisted

	if err := r.recordAdoption(ctx, s, adopting, products, offers); err != nil {
		return err
	}
	stop := r.writeAll(ctx, s, products, offers)
	var found []v1.DriftRecord
	p.Status.Products = r.record(s, products, &found)
	p.Status.OfferTypes = r.record(s, offers, &found)
	for _, d := range found {
		recordDrift(&p.Status, d)
	}
	return stop
}

// recordAdoption writes the adoption values to status before the first
// write that changes an adopted product, so that no failure after the write
// (a status write that loses a conflict with a GitOps tool, a crash, a lost
// leadership) can make a later run adopt the values this policy wrote, and
// Restore put those back. This is the one extra status write, at adoption
// only; the Adopted announcement precedes it. Without such a write (Observe
// mode, nothing differs) adoption is recorded and announced with the run's
// status, as usual.
func (r *TenantPurchasePolicyReconciler) recordAdoption(ctx context.Context, s *syncState, adopting bool, products, offers []*change) error {
	if note := adoptionNote(s, adopting); note != "" {
		s.announce(eventNormal, v1.EventAdopted, "products", "%s", note)
	}
	if !adoptedWrite(products) && !adoptedWrite(offers) {
		return nil
	}
	st := &s.policy.Status
	st.Products = snapshot(st.Products, products)
	st.OfferTypes = snapshot(st.OfferTypes, offers)
	r.announceAll(ctx, s)
	if err := r.writeStatus(ctx, s); err != nil {
		return fmt.Errorf("recording the adoption values before the first write: %w", err)
	}
	s.written = s.policy.DeepCopy()
	return nil
}

// adoptionNote says what the policy adopted, when it adopts the products.
func adoptionNote(s *syncState, adopting bool) string {
	if !adopting || len(s.plan.Products) == 0 {
		return ""
	}
	var differ []string
	for _, t := range s.plan.Products {
		if t.Differs() {
			differ = append(differ, t.ID)
		}
	}
	return fmt.Sprintf("adopted %d products of tenant %s; %d differed from the policy: %s",
		len(s.plan.Products), s.policy.Spec.TenantID, len(differ), truncateList(differ, 10))
}

// adoptedWrite tells whether this run writes a product of changes it adopts.
func adoptedWrite(changes []*change) bool {
	for _, c := range changes {
		if c.adopted && c.set != nil {
			return true
		}
	}
	return false
}

// snapshot is a list as status had it, plus the entries adopted in this run
// as they were before any write.
func snapshot(prev []v1.ProductStatus, changes []*change) []v1.ProductStatus {
	before := make(map[string]v1.ProductStatus, len(prev))
	for _, ps := range prev {
		before[ps.ProductID] = ps
	}
	var out []v1.ProductStatus
	for _, c := range changes {
		if old, ok := before[c.t.ID]; ok {
			out = append(out, old)
		} else if c.adopted && c.recorded {
			out = append(out, c.st)
		}
	}
	return out
}

// record completes each change with its write's answer and returns the
// status entries, in list order; drift records found are appended to found.
func (r *TenantPurchasePolicyReconciler) record(s *syncState, changes []*change, found *[]v1.DriftRecord) []v1.ProductStatus {
	enforce := s.policy.Spec.Mode == v1.ModeEnforce
	out := make([]v1.ProductStatus, 0, len(changes))
	for _, c := range changes {
		if c.sent {
			r.recordWrite(s, c)
		}
		if c.st.PendingValue == "" && c.st.UnconfirmedWrites == 0 {
			c.st.LastWriteTime = nil // settled: only an unsettled write needs its time
		}
		if c.drift != nil {
			if enforce && c.drift.Action == v1.DriftReported {
				// Enforce mode could not write it in this run (an earlier write
				// was throttled, the value is held): the next confirmed write
				// completes the correction.
				c.drift.Action = v1.DriftCorrectionFailed
			}
			*found = append(*found, *c.drift)
		}
		if c.recorded {
			out = append(out, c.st)
		}
	}
	return out
}

// confirmed counts a write that Microsoft confirmed (its answer, or a list
// after it, showed the value): a correction of the product, and of the drift
// it corrects. Only a list resets the unconfirmed writes (confirmPending).
func (s *syncState) confirmed(c *change, value string) {
	if d := s.correction(&c.st.Corrections, &c.st.LastCorrectionTime, c.correcting); d != nil {
		s.event(eventNormal, v1.EventDriftCorrected, "set %s (%s) back from %s to %s", c.t.ID, c.t.Name, d.Found, value)
	}
}

// correction counts a confirmed write of a product or setting (its
// corrections and their time) and closes the drift it corrects; it returns
// that drift when this write closed it, for the DriftCorrected Event.
func (s *syncState) correction(corrections *int64, last **metav1.Time, d *v1.DriftRecord) *v1.DriftRecord {
	now := metav1.NewTime(s.now)
	*corrections++
	*last = &now
	if d == nil || d.Action == v1.DriftCorrected {
		return nil
	}
	d.Action = v1.DriftCorrected
	s.policy.Status.Counters.DriftCorrected++
	return d
}

// unconfirmed counts a write that Microsoft accepted but a read (its answer,
// or the list after it) did not show; the third in a row is announced, and
// holds the value (decideTarget).
func (s *syncState) unconfirmed(c *change, value, shows string) {
	c.st.UnconfirmedWrites++
	if d := c.correcting; d != nil && d.Action != v1.DriftCorrected {
		d.Action = v1.DriftCorrectionFailed
	}
	if c.st.UnconfirmedWrites == maxUnconfirmedWrites {
		s.event(eventWarning, v1.EventWriteNotApplied, "Microsoft accepted %s (%s) = %s %d times in a row, but the tenant still shows %s; "+
			"not written again until the desired value changes, the tenant shows it, or %s after the last write", c.t.ID, c.t.Name, value, c.st.UnconfirmedWrites, shows, holdExpiry)
	}
}

func newProductNote(t plan.Target) string {
	switch {
	case !t.Managed():
		return "left alone (Unmanaged)"
	case t.Differs():
		return fmt.Sprintf("default sets it to %s", t.Desired)
	}
	return "already as default wants"
}

// failedDrift returns the newest drift record of a product when its
// correction failed (a throttle, a transient error) or waits for a read to
// confirm it, so the write that is finally confirmed counts as correcting
// that drift.
func failedDrift(history []v1.DriftRecord, productID string) *v1.DriftRecord {
	for i := range history {
		if history[i].ProductID == productID {
			if a := history[i].Action; a == v1.DriftCorrectionFailed || a == v1.DriftCorrectionPending {
				return &history[i]
			}
			return nil
		}
	}
	return nil
}

// recordDrift puts d first in the history and keeps the newest entries.
func recordDrift(st *v1.TenantPurchasePolicyStatus, d v1.DriftRecord) {
	st.DriftHistory = append([]v1.DriftRecord{d}, st.DriftHistory...)
	if len(st.DriftHistory) > v1.MaxDriftHistory {
		st.DriftHistory = st.DriftHistory[:v1.MaxDriftHistory]
	}
}
