package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/graph"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// Tenant-wide acquisition settings (spec.tenantSettings): four switches on
// two Graph resources that let users get licences past the product
// policies. They follow the products' semantics (adoption, drift as
// transitions, Enforce corrects, Observe reports, Restore on deletion) with
// the floor of product.md: one GET per resource with a managed setting, one
// PATCH per resource that differs, holding only the differing properties.

// settingsResource is one Graph resource holding settings (what
// internal/plan knows of it) and the calls that read and write it.
type settingsResource struct {
	*plan.SettingsResource
	get    func(TenantSettingsAPI, context.Context) (graph.Settings, error)
	update func(TenantSettingsAPI, context.Context, graph.Settings) error
}

var settingsResources = []*settingsResource{
	{SettingsResource: plan.AuthorizationPolicy, get: TenantSettingsAPI.GetAuthorizationPolicy, update: TenantSettingsAPI.UpdateAuthorizationPolicy},
	{SettingsResource: plan.AppsAndServices, get: TenantSettingsAPI.GetAppsAndServices, update: TenantSettingsAPI.UpdateAppsAndServices},
}

// settingsOutcome is what the settings step reports to the conditions.
type settingsOutcome struct {
	// managed is false when spec.tenantSettings manages nothing.
	managed bool
	// reason and problems describe what degraded (first reason wins).
	reason   string
	problems []string
}

func (o *settingsOutcome) degrade(reason, format string, args ...any) {
	if o.reason == "" {
		o.reason = reason
	}
	o.problems = append(o.problems, fmt.Sprintf(format, args...))
}

// settingChange is what one run does about one managed setting.
type settingChange struct {
	ts      plan.Setting
	desired v1.SettingValue
	row     v1.TenantSettingStatus
	adopted bool
	// write: Enforce mode sends desired.
	write bool
	// drift is a transition this run found (recorded once the write's
	// answer is known); correcting is the drift record a confirmed write
	// completes (drift, or an earlier record of the setting).
	drift, correcting *v1.DriftRecord
}

// reconcileTenantSettings reads each Graph resource that holds a managed
// setting (one GET), records adoption, drift transitions and the
// confirmation of earlier writes, and in Enforce mode sends one PATCH per
// resource with exactly the settings that differ. A resource that cannot be
// read or written (403, a cloud without the beta resource, Graph failing)
// leaves only its settings unknown: the run goes on.
//
// Sets status.tenantSettings, status.driftHistory, counters and (through
// recordStatus) TenantSettingsDegraded; before the first write of an
// adopted setting writes status once more with the adoption values.
func (r *TenantPurchasePolicyReconciler) reconcileTenantSettings(ctx context.Context, s *syncState) error {
	p := s.policy
	out := &settingsOutcome{}
	s.tenantSettings = out
	prev := map[v1.TenantSettingName]v1.TenantSettingStatus{}
	for _, row := range p.Status.TenantSettings {
		prev[row.Setting] = row
	}
	var rows []v1.TenantSettingStatus
	var all []*settingChange
	var writes []resourceWrite
	for _, res := range settingsResources {
		var changes []*settingChange
		for _, ts := range plan.TenantSettings {
			if desired, ok := ts.Desired(p.Spec.TenantSettings); ok && ts.Resource == res.SettingsResource {
				old := prev[ts.Name]
				old.Setting, old.Resource, old.Desired = ts.Name, res.Name, desired
				changes = append(changes, &settingChange{ts: ts, desired: desired, row: old})
			}
		}
		if len(changes) == 0 {
			continue
		}
		out.managed = true
		if w := s.readResource(ctx, res, changes); len(w.patch) > 0 {
			writes = append(writes, w)
		}
		all = append(all, changes...)
	}
	if len(writes) > 0 {
		if err := r.snapshotSettingsAdoption(ctx, s, all); err != nil {
			return err
		}
	}
	for _, w := range writes {
		r.writeResource(ctx, s, w)
	}
	for _, c := range all {
		rows = append(rows, c.row)
		if c.drift != nil {
			recordDrift(&p.Status, *c.drift)
		}
	}
	s.announceSettingsAdoption(all)
	p.Status.TenantSettings = rows
	return nil
}

// resourceWrite is the PATCH of one resource: the differing properties and
// the changes they belong to.
type resourceWrite struct {
	res     *settingsResource
	patch   graph.Settings
	changes []*settingChange
}

// readResource reads one resource and decides about its settings; in
// Enforce mode it returns the PATCH of those that differ.
func (s *syncState) readResource(ctx context.Context, res *settingsResource, changes []*settingChange) resourceWrite {
	w := resourceWrite{res: res, patch: graph.Settings{}}
	if s.settings == nil {
		s.tenantSettings.degrade(v1.ReasonGraphUnavailable, "no Graph client for tenant settings")
		markUnknown(changes, v1.ReasonGraphUnavailable)
		return w
	}
	observed, err := res.get(s.settings, ctx)
	if err != nil {
		markUnknown(changes, s.settingsFailure(res, res.ReadPermission, "read", changes, err))
		return w
	}
	enforce := s.policy.Spec.Mode == v1.ModeEnforce
	for _, c := range changes {
		v, ok := c.ts.Observed(observed)
		if !ok {
			s.tenantSettings.degrade(v1.ReasonGraphUnavailable, "%s answered without %s (%s); read again at the next sync", res.What, c.ts.Field, c.ts.Name)
			markUnknown([]*settingChange{c}, v1.ReasonGraphUnavailable)
			continue
		}
		s.decideSetting(c, v)
		if enforce && (plan.SettingTarget{Setting: c.ts, Desired: c.desired, Observed: v}).Differs() {
			c.write = true
			w.patch[c.ts.Field] = plan.GraphValue(c.desired)
			w.changes = append(w.changes, c)
		}
	}
	return w
}

// writeResource sends one PATCH and records its answer: accepted (204, no
// body) leaves the values pending until the next read confirms them.
func (r *TenantPurchasePolicyReconciler) writeResource(ctx context.Context, s *syncState, w resourceWrite) {
	err := w.res.update(s.settings, ctx, w.patch)
	r.Metrics.settingsWrite(s.policy, w.res.Name, err)
	var names []string
	for _, c := range w.changes {
		names = append(names, fmt.Sprintf("%s=%s", c.ts.Name, c.desired))
		switch {
		case err != nil && c.correcting != nil:
			c.correcting.Action = v1.DriftCorrectionFailed
		case err == nil:
			c.row.PendingValue = c.desired
			if c.correcting != nil {
				c.correcting.Action = v1.DriftCorrectionPending
			}
		}
	}
	if err != nil {
		s.event(eventWarning, v1.EventWriteFailed, "setting tenant settings %s failed: %v", strings.Join(names, ", "), err)
		s.settingsFailure(w.res, w.res.WritePermission, "write", w.changes, err)
		return
	}
	s.wakeAt = append(s.wakeAt, s.now.Add(settingsConfirmAfter))
}

// settingsConfirmAfter is how soon after an accepted PATCH the policy runs
// again to read the values back: Microsoft answers 204 without a body, so
// only a read confirms a write (and counts the correction), and Graph is
// consistent again within seconds.
const settingsConfirmAfter = 15 * time.Second

// decideSetting records what the read shows against status: the
// confirmation (or not) of an earlier write, adoption the first time the
// setting is read, and a drift transition when it changed from what status
// last recorded to a value other than desired.
func (s *syncState) decideSetting(c *settingChange, obs v1.SettingValue) {
	now := metav1.NewTime(s.now)
	old := c.row
	c.row.UnknownReason = ""
	c.correcting = failedSettingDrift(s.policy.Status.DriftHistory, c.ts.Name)
	if pending := old.PendingValue; pending != "" {
		c.row.PendingValue = ""
		if obs == pending {
			s.settingConfirmed(c, pending)
		}
	}
	switch {
	case old.AdoptedAt == nil:
		c.row.AdoptedValue, c.row.AdoptedAt, c.adopted = obs, &now, true
	case old.Observed != "" && obs != old.Observed && obs != c.desired:
		d := &v1.DriftRecord{Setting: c.ts.Name, Expected: string(old.Observed), Found: string(obs), DetectedAt: now, Action: v1.DriftReported}
		if s.policy.Spec.Mode == v1.ModeEnforce {
			d.Action = v1.DriftCorrectionFailed // until a confirmed write corrects it
		}
		c.drift, c.correcting = d, d
		s.policy.Status.Counters.DriftDetected++
		s.event(eventWarning, v1.EventDriftDetected, "tenant setting %s (%s) changed from %s to %s outside this policy", c.ts.Name, c.ts.Path, old.Observed, obs)
	}
	c.row.Observed = obs
}

// settingConfirmed counts a write a read confirmed: a correction of the
// setting, and of the drift it corrects.
func (s *syncState) settingConfirmed(c *settingChange, value v1.SettingValue) {
	if d := s.correction(&c.row.Corrections, &c.row.LastCorrectionTime, c.correcting); d != nil {
		s.event(eventNormal, v1.EventDriftCorrected, "set tenant setting %s (%s) back from %s to %s", c.ts.Name, c.ts.Path, d.Found, value)
	}
}

// failedSettingDrift returns the newest drift record of a setting when its
// correction failed or waits for a read, so the write finally confirmed
// counts as correcting it.
func failedSettingDrift(history []v1.DriftRecord, name v1.TenantSettingName) *v1.DriftRecord {
	for i := range history {
		if history[i].Setting == name {
			if a := history[i].Action; a == v1.DriftCorrectionFailed || a == v1.DriftCorrectionPending {
				return &history[i]
			}
			return nil
		}
	}
	return nil
}

// markUnknown keeps the rows of settings that could not be read as they
// were, with why.
func markUnknown(changes []*settingChange, reason string) {
	for _, c := range changes {
		c.row.UnknownReason = reason
	}
}

// settingsFailure degrades the settings of res after a failed read or
// write and returns the reason: Forbidden naming the permission,
// NotOfferedInThisCloud for a cloud without the beta resource, or
// GraphUnavailable.
func (s *syncState) settingsFailure(res *settingsResource, permission, verb string, changes []*settingChange, err error) string {
	var names []string
	for _, c := range changes {
		names = append(names, string(c.ts.Name))
	}
	which := strings.Join(names, ", ")
	switch {
	case graph.NotOffered(err):
		s.tenantSettings.degrade(v1.ReasonNotOfferedInThisCloud, "this cloud does not offer %s, so %s cannot be %s; the products and other settings are enforced: %v", res.What, which, participle[verb], err)
		return v1.ReasonNotOfferedInThisCloud
	case m365.KindOf(err) == m365.Forbidden || m365.KindOf(err) == m365.Unauthorized:
		s.tenantSettings.degrade(v1.ReasonForbidden, "missing permission %s to %s %s (%s): grant it to the app (or the role to the delegated admin); the products and other settings are enforced: %v", permission, verb, which, res.What, err)
		return v1.ReasonForbidden
	}
	s.tenantSettings.degrade(v1.ReasonGraphUnavailable, "could not %s %s (%s), tried again at the next sync: %v", verb, which, res.What, err)
	return v1.ReasonGraphUnavailable
}

var participle = map[string]string{"read": "read", "write": "written"}

// snapshotSettingsAdoption writes the adoption values of the settings this
// run adopts to status before the PATCH that changes them, as
// recordAdoption does for products: no failure after the write can make a
// later run adopt the value this policy wrote. The snapshot is status as
// last written with only the adopted rows added. The Adopted announcement
// (of every setting this run adopts) precedes it.
func (r *TenantPurchasePolicyReconciler) snapshotSettingsAdoption(ctx context.Context, s *syncState, changes []*settingChange) error {
	if !slices.ContainsFunc(changes, func(c *settingChange) bool { return c.adopted && c.write }) {
		return nil
	}
	from := s.base
	if s.written != nil {
		from = s.written
	}
	snap := from.DeepCopy()
	for _, c := range changes {
		if !c.adopted {
			continue
		}
		row := c.row
		row.PendingValue = ""
		snap.Status.TenantSettings = slices.DeleteFunc(snap.Status.TenantSettings, func(e v1.TenantSettingStatus) bool { return e.Setting == row.Setting })
		snap.Status.TenantSettings = append(snap.Status.TenantSettings, row)
	}
	s.announceSettingsAdoption(changes)
	r.announceAll(ctx, s)
	if err := r.Client.Status().Update(ctx, snap); err != nil {
		return fmt.Errorf("recording the tenant settings' adoption values before the first write: %w", err)
	}
	s.written = snap
	s.policy.ResourceVersion = snap.ResourceVersion
	for _, c := range changes {
		c.adopted = false // announced
	}
	return nil
}

// announceSettingsAdoption queues the Adopted announcement of the settings
// this run adopts and has not announced yet: without a write before it
// (Observe mode, already as desired, or a write that was not sent), at the
// end of the run; snapshotSettingsAdoption announced the others.
func (s *syncState) announceSettingsAdoption(changes []*settingChange) {
	var adopted, names []string
	for _, c := range changes {
		if c.adopted {
			adopted = append(adopted, fmt.Sprintf("%s as %s (wants %s)", c.ts.Name, c.row.AdoptedValue, c.desired))
			names = append(names, string(c.ts.Name))
		}
	}
	if len(adopted) > 0 {
		s.announce(eventNormal, v1.EventAdopted, "tenantSettings/"+strings.Join(names, ","),
			"adopted tenant settings of tenant %s: %s", s.policy.Spec.TenantID, strings.Join(adopted, ", "))
	}
}

// restoreSettings writes back the adoption values of the tenant settings
// this policy adopted: one GET per resource holding such a setting, one
// PATCH per resource with those that differ. A cloud that no longer offers
// a resource is skipped; a missing permission stalls the deletion like a
// product's (restoreBlocked).
//
// Queues Event Restored when it wrote something.
func (r *TenantPurchasePolicyReconciler) restoreSettings(ctx context.Context, s *syncState) error {
	if s.settings == nil {
		return nil
	}
	var restored []string
	for _, res := range settingsResources {
		var rows []v1.TenantSettingStatus
		for _, row := range s.policy.Status.TenantSettings {
			if row.Resource == res.Name && row.AdoptedValue != "" {
				rows = append(rows, row)
			}
		}
		if len(rows) == 0 {
			continue
		}
		current, err := res.get(s.settings, ctx)
		if err == nil {
			patch := graph.Settings{}
			for _, row := range rows {
				ts := plan.SettingNamed(row.Setting)
				if v, ok := ts.Observed(current); ok && (plan.SettingTarget{Setting: ts, Desired: row.AdoptedValue, Observed: v}).Differs() {
					patch[ts.Field] = plan.GraphValue(row.AdoptedValue)
					restored = append(restored, fmt.Sprintf("%s=%s", row.Setting, row.AdoptedValue))
				}
			}
			if len(patch) > 0 {
				err = res.update(s.settings, ctx, patch)
				r.Metrics.settingsWrite(s.policy, res.Name, err)
			}
		}
		switch {
		case err == nil:
		case graph.NotOffered(err):
			s.event(eventWarning, v1.EventRestoreSkipped, "this cloud no longer offers %s: its tenant settings were not restored", res.What)
		default:
			return classify(fmt.Errorf("restoring the tenant settings on %s: %w", res.What, err))
		}
	}
	if len(restored) > 0 {
		s.event(eventNormal, v1.EventRestored, "restored tenant settings %s of tenant %s to their values at adoption", strings.Join(restored, ", "), s.policy.Spec.TenantID)
	}
	return nil
}
