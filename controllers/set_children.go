package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// setFieldManager is the field manager the set's controller writes children
// with (server-side apply, forced): its fields win over a hand edit.
const setFieldManager = "tenantpurchasepolicyset-controller"

// pruneAfterMisses is how many discoveries in a row (within the drop
// bounds) must miss a customer before its child is pruned.
const pruneAfterMisses = 2

// setTenant is one tenant of a set: listed (with its name and overrides),
// discovered, or both (the listed entry wins).
type setTenant struct {
	tenantID string
	// name is the listed child name suffix; empty for discovered tenants.
	name      string
	overrides *v1.PolicyOverrides
	listed    bool
}

// desiredChild is the policy the set wants for one tenant.
type desiredChild struct {
	name     string
	tenantID string
	spec     v1.TenantPurchasePolicySpec
}

// setTenants returns the tenants of the set, sorted by tenant ID: the
// listed ones, and the discovered ones that are not excluded (discovery's
// status keeps a missing customer until it is pruned).
func setTenants(set *v1.TenantPurchasePolicySet) []setTenant {
	byID := map[string]setTenant{}
	for _, t := range set.Spec.Tenants {
		byID[t.TenantID] = setTenant{tenantID: t.TenantID, name: t.Name, overrides: t.Overrides, listed: true}
	}
	if d := set.Spec.Discovery; d != nil && d.DelegatedAdminCustomers != nil && set.Status.Discovery != nil {
		excluded := map[string]bool{}
		for _, id := range d.DelegatedAdminCustomers.Exclude {
			excluded[id] = true
		}
		for _, t := range set.Status.Discovery.Tenants {
			if _, listed := byID[t.TenantID]; !listed && !excluded[t.TenantID] {
				byID[t.TenantID] = setTenant{tenantID: t.TenantID}
			}
		}
	}
	out := make([]setTenant, 0, len(byID))
	for _, t := range byID {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b setTenant) int { return strings.Compare(a.tenantID, b.tenantID) })
	return out
}

// childNames is how the set names its children.
type childNames struct {
	set string
	// owned maps the names of the set's children to their tenants.
	owned map[string]string
	// foreign are the names of policies in the namespace the set does not own.
	foreign map[string]bool
}

// preferred is <set>-<name>, or <set>-<first 8 characters of the tenant ID>.
func (n childNames) preferred(t setTenant) string {
	if t.name != "" {
		return n.set + "-" + t.name
	}
	return n.set + "-" + t.tenantID[:8]
}

// fallback is <set>-<tenant ID>, unique within the set. With a set name of
// at most 63 characters (CEL) and a listed name of at most 63, no child
// name exceeds 127 characters, well within a policy name's 253.
func (n childNames) fallback(t setTenant) string { return n.set + "-" + t.tenantID }

// nameAssignment is the outcome of naming the children.
type nameAssignment struct {
	// names maps tenant IDs to child names.
	names map[string]string
	// untaken are tenants no name could be found for (NameTaken).
	untaken []v1.ChildReport
	// collisions note each tenant that got its fallback name this time.
	collisions []string
}

// assign names the children, deterministically and stably: a tenant keeps
// the name its existing child has, if that is one of its own names
// (preferred or fallback); otherwise it gets its preferred name, or the
// fallback when the preferred one is held (by a policy the set does not
// own, another tenant's child, or a tenant earlier in order: listed names
// first, then by tenant ID). A renamed tenant gets a new child; the old one
// is pruned.
func (n childNames) assign(tenants []setTenant) nameAssignment {
	a := nameAssignment{names: map[string]string{}}
	used := map[string]bool{}
	for name := range n.foreign {
		used[name] = true
	}
	for name := range n.owned {
		used[name] = true
	}
	var pending []setTenant
	for _, t := range tenants {
		switch pref, fb := n.preferred(t), n.fallback(t); {
		case n.owned[pref] == t.tenantID:
			a.names[t.tenantID] = pref
		case n.owned[fb] == t.tenantID:
			a.names[t.tenantID] = fb
		default:
			pending = append(pending, t)
		}
	}
	// Explicit names claim their preferred name before derived ones.
	slices.SortStableFunc(pending, func(x, y setTenant) int {
		switch {
		case x.name != "" && y.name == "":
			return -1
		case x.name == "" && y.name != "":
			return 1
		}
		return 0
	})
	for _, t := range pending {
		pref, fb := n.preferred(t), n.fallback(t)
		switch {
		case !used[pref]:
			a.names[t.tenantID] = pref
		case !used[fb]:
			a.names[t.tenantID] = fb
			a.collisions = append(a.collisions, fmt.Sprintf("%s is taken: tenant %s gets %s", pref, t.tenantID, fb))
		default:
			a.untaken = append(a.untaken, v1.ChildReport{Name: pref, TenantID: t.tenantID, Reason: v1.ReasonNameTaken,
				Message: fmt.Sprintf("%s and %s are both held by policies this set does not own; rename or delete one, or give the tenant a name", pref, fb)})
			continue
		}
		used[a.names[t.tenantID]] = true
	}
	return a
}

// planChildren works out the children the set wants: the set's tenants,
// named (assign), each with the template and its overrides.
//
// Queues NameCollision Events; tenants without a name are reported in
// status.notReady (NameTaken).
func (r *TenantPurchasePolicySetReconciler) planChildren(_ context.Context, s *setState) error {
	tenants := setTenants(s.set)
	names := childNames{set: s.set.Name, owned: map[string]string{}, foreign: s.foreign}
	for name, c := range s.owned {
		names.owned[name] = c.Spec.TenantID
	}
	a := names.assign(tenants)
	s.notWritten = append(s.notWritten, a.untaken...)
	for _, c := range a.collisions {
		s.event(eventWarning, v1.EventNameCollision, "%s", c)
	}
	tpl := &s.set.Spec.Template.TenantPurchasePolicyTemplate
	for _, t := range tenants {
		name, ok := a.names[t.tenantID]
		if !ok {
			continue
		}
		s.desired = append(s.desired, desiredChild{name: name, tenantID: t.tenantID, spec: plan.TenantSpec(tpl, t.tenantID, t.overrides)})
	}
	s.tenants = len(tenants)
	return nil
}

// writeChildren makes every desired child match: a child that is missing is
// created, one that differs (a template change, or a hand edit) is written
// with server-side apply under the set's field manager, forcing ownership.
// A child already matching costs nothing. A name held by a policy the set
// does not own is never written (NameTaken); a child the API server refuses
// is reported (Rejected) and the others go on. The first other failure is
// returned once every child was tried.
//
// Queues ChildCreated, ChildUpdated and ChildRestored Events.
func (r *TenantPurchasePolicySetReconciler) writeChildren(ctx context.Context, s *setState) error {
	var firstErr error
	for _, d := range s.desired {
		got, verb, err := r.writeChild(ctx, s, d)
		switch {
		case err == nil:
		case isRefusal(err):
			s.notWritten = append(s.notWritten, v1.ChildReport{Name: d.name, TenantID: d.tenantID, Reason: v1.ReasonRejected, Message: truncate(err.Error(), 1024)})
			continue
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("writing child %s: %w", d.name, err)
			}
			continue
		}
		if got != nil {
			s.children[d.name] = got
		}
		s.noteWrite(verb, d.name)
	}
	return firstErr
}

// Verbs of writeChild.
const (
	writeNone     = ""
	writeCreated  = "created"
	writeUpdated  = "updated"
	writeRestored = "restored"
	writeNotOwned = "not owned"
)

// writeChild writes one child if it needs it and returns it as the API
// server holds it, with what was done.
func (r *TenantPurchasePolicySetReconciler) writeChild(ctx context.Context, s *setState, d desiredChild) (*v1.TenantPurchasePolicy, string, error) {
	cur := s.owned[d.name]
	if cur == nil {
		// Not in the cache: look on the server, so that a policy the cache
		// does not hold (another shard's, or just created) is never taken over.
		found, err := r.serverChild(ctx, s.set.Namespace, d.name)
		switch {
		case err != nil:
			return nil, writeNone, err
		case found != nil && !controlledBy(found, s.set):
			s.notWritten = append(s.notWritten, v1.ChildReport{Name: d.name, TenantID: d.tenantID, Reason: v1.ReasonNameTaken,
				Message: fmt.Sprintf("policy %s exists and is not owned by this set; it is left alone", d.name)})
			return nil, writeNotOwned, nil
		}
		cur = found
	}
	if cur != nil && childMatches(cur, s.set, d) {
		return cur, writeNone, nil
	}
	got, err := r.applyChild(ctx, s.set, d)
	// With the set's spec unchanged since its last run, a child that differs
	// was edited by hand.
	verb := writeRestored
	switch {
	case cur == nil:
		verb = writeCreated
	case s.set.Status.ObservedGeneration != s.set.Generation:
		verb = writeUpdated
	}
	return got, verb, err
}

// specOf tells whether the child's spec is the desired one.
func specOf(c *v1.TenantPurchasePolicy, d desiredChild) bool {
	return equality.Semantic.DeepEqual(c.Spec, d.spec)
}

// serverChild reads a policy by name from the API server (uncached); nil
// when there is none.
func (r *TenantPurchasePolicySetReconciler) serverChild(ctx context.Context, ns, name string) (*v1.TenantPurchasePolicy, error) {
	p := &v1.TenantPurchasePolicy{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading policy %s/%s: %w", ns, name, err)
	}
	return p, nil
}

// childMatches tells whether a child needs no write: its spec is the
// desired one, it carries the set's labels, no label the set applied
// earlier and no longer wants, and the set's controller reference.
func childMatches(c *v1.TenantPurchasePolicy, set *v1.TenantPurchasePolicySet, d desiredChild) bool {
	if !specOf(c, d) || !controlledBy(c, set) {
		return false
	}
	want := childLabels(set)
	for k, v := range want {
		if c.Labels[k] != v {
			return false
		}
	}
	for _, k := range appliedLabelKeys(c) {
		if _, ok := want[k]; !ok {
			return false
		}
	}
	return true
}

// childLabels are the labels every child carries: childLabels and the set label.
func childLabels(set *v1.TenantPurchasePolicySet) map[string]string {
	out := make(map[string]string, len(set.Spec.ChildLabels)+1)
	for k, v := range set.Spec.ChildLabels {
		out[k] = string(v)
	}
	out[v1.SetLabel] = set.Name
	return out
}

// appliedLabelKeys are the label keys the set applied to the child last
// time, from its SetLabelsAnnotation.
func appliedLabelKeys(c *v1.TenantPurchasePolicy) []string {
	v := c.Annotations[v1.SetLabelsAnnotation]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// controlledBy tells whether the set is the child's controller.
func controlledBy(c client.Object, set *v1.TenantPurchasePolicySet) bool {
	ref := metav1.GetControllerOfNoCopy(c)
	return ref != nil && ref.UID == set.UID
}

// applyChild writes the child with server-side apply (forced) and returns
// what the API server holds. Apply cannot take away what another manager
// added and the set does not set, such as an extra product rule: when the
// result still differs from the desired spec, a merge patch of the spec
// puts it back.
func (r *TenantPurchasePolicySetReconciler) applyChild(ctx context.Context, set *v1.TenantPurchasePolicySet, d desiredChild) (*v1.TenantPurchasePolicy, error) {
	u, err := childApplyObject(set, d)
	if err != nil {
		return nil, err
	}
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(setFieldManager), client.ForceOwnership); err != nil {
		return nil, err
	}
	got := &v1.TenantPurchasePolicy{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, got); err != nil {
		return nil, err
	}
	if specOf(got, d) {
		return got, nil
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec = *d.spec.DeepCopy()
	if err := r.Client.Patch(ctx, got, patch, client.FieldOwner(setFieldManager)); err != nil {
		return nil, err
	}
	return got, nil
}

// childApplyObject is the apply request of a child: name, labels, the
// controller reference to the set and the spec, nothing else (no status).
// spec.suspend is always sent, so the set owns it even when it is false.
func childApplyObject(set *v1.TenantPurchasePolicySet, d desiredChild) (*unstructured.Unstructured, error) {
	spec, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d.spec)
	if err != nil {
		return nil, err
	}
	spec["suspend"] = d.spec.Suspend
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(v1.GroupVersion.WithKind("TenantPurchasePolicy"))
	u.SetNamespace(set.Namespace)
	u.SetName(d.name)
	labels := childLabels(set)
	u.SetLabels(labels)
	u.SetAnnotations(map[string]string{v1.SetLabelsAnnotation: strings.Join(slices.Sorted(maps.Keys(labels)), ",")})
	u.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(set, v1.GroupVersion.WithKind("TenantPurchasePolicySet"))})
	return u, nil
}

// isRefusal tells whether the API server refused a child for good: the
// merged spec is invalid (more than 256 product rules, say) or not allowed.
func isRefusal(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err)
}

// pruneChildren deletes the set's children whose tenant left: removed from
// spec.tenants, excluded, missing from two discoveries in a row, or renamed
// (a new child replaces it). Nothing is deleted when spec.prune is false. A
// deleted child runs its own deletionPolicy.
//
// Queues ChildPruned Events.
func (r *TenantPurchasePolicySetReconciler) pruneChildren(ctx context.Context, s *setState) error {
	wanted := make(map[string]bool, len(s.desired))
	for _, d := range s.desired {
		wanted[d.name] = true
	}
	for _, name := range sortedKeys(s.owned) {
		c := s.owned[name]
		if wanted[name] || !c.DeletionTimestamp.IsZero() {
			continue
		}
		if !ptr.Deref(s.set.Spec.Prune, true) {
			s.kept = append(s.kept, name)
			continue
		}
		if err := r.deleteChild(ctx, c); err != nil {
			return fmt.Errorf("pruning child %s: %w", name, err)
		}
		s.event(eventNormal, v1.EventChildPruned, "pruned %s (tenant %s left the set); it follows its deletionPolicy %s", name, c.Spec.TenantID, c.Spec.DeletionPolicy)
	}
	return nil
}

// deleteChild deletes one child (that very object: UID precondition).
func (r *TenantPurchasePolicySetReconciler) deleteChild(ctx context.Context, c *v1.TenantPurchasePolicy) error {
	uid := c.UID
	err := r.Client.Delete(ctx, c.DeepCopy(), client.Preconditions{UID: &uid}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone already, or replaced by another object of that name
	}
	return err
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
