package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// TenantPurchasePolicySetReconciler reconciles TenantPurchasePolicySets: it
// keeps one TenantPurchasePolicy (a child) per tenant of the set, discovers
// a partner's customers, prunes the children of tenants that left (never on
// doubt) and reports the fleet in the set's status. The children are
// ordinary policies, reconciled by TenantPurchasePolicyReconciler.
type TenantPurchasePolicySetReconciler struct {
	// Client is the manager's cached client: sets, children (read from the
	// cache, never one by one from the API server), status, writes.
	Client client.Client
	// APIReader reads uncached: a child's name before it is created, the
	// last children of a set being deleted.
	APIReader client.Reader
	// Recorder emits Events.
	Recorder recorder.EventRecorder
	// Partners lists a partner's customers (Microsoft Graph).
	Partners PartnerAPI
	// Credentials loads the discovery auth exactly as a policy's auth.
	Credentials credentialLoader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReconcileTimeout bounds one reconcile.
	ReconcileTimeout time.Duration
	// Coalesce is how long a child's status change waits before the set
	// runs, so a fleet of children syncing costs one set run (and at most
	// one status write) per window; zero means defaultCoalesce.
	Coalesce time.Duration

	// discovered remembers, per set UID, the last discovery attempt this
	// process recorded in status, so a run that reads the set from a cache
	// not yet holding that status does not list the customers again.
	discovered sync.Map // types.UID → time.Time
}

// credentialLoader turns an auth block into a token credential; the policy
// reconciler is one (tokenCredential).
type credentialLoader interface {
	tokenCredential(ctx context.Context, ns, tenantID string, a v1.Auth) (azcore.TokenCredential, *time.Time, error)
}

// defaultCoalesce is the default of TenantPurchasePolicySetReconciler.Coalesce.
const defaultCoalesce = 2 * time.Second

// setState carries one run of a set from step to step.
type setState struct {
	set, base           *v1.TenantPurchasePolicySet
	now                 time.Time
	deleting, suspended bool

	// owned are the set's children in the cache, by name (read only: the
	// cache's own objects); foreign the names of the namespace's other
	// policies.
	owned   map[string]*v1.TenantPurchasePolicy
	foreign map[string]bool
	// tenants counts the set's tenants; desired are their children, named.
	tenants int
	desired []desiredChild
	// children are the desired children as last seen: from the cache, or as
	// written in this run.
	children map[string]*v1.TenantPurchasePolicy
	// notWritten are tenants whose child could not be written.
	notWritten []v1.ChildReport
	// kept are children of tenants that left, kept because prune is false.
	kept []string
	// created, updated and restored name the children written in this run.
	created, updated, restored []string
	// pruneHeld is the verdict of this run's discovery (nil: none ran).
	pruneHeld *heldPrune
	// remaining counts the children still there while the set is deleted.
	remaining int

	err    error
	wakeAt []time.Time
	events []eventNote
}

// heldPrune is a discovery's PruneHeld verdict: an empty reason means trusted.
type heldPrune struct{ reason, message string }

// setStep is one named part of a set's run.
type setStep func(ctx context.Context, s *setState) error

// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicysets,verbs=list;watch;patch
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicysets/status,verbs=patch
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicysets/finalizers,verbs=update
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicies,verbs=get;create;delete

// Reconcile runs the set's steps, then finish records status once (only
// when it changed), releases the finalizer of a deleted set whose children
// are gone, emits Events and schedules the next run.
func (r *TenantPurchasePolicySetReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, retErr error) {
	set := &v1.TenantPurchasePolicySet{}
	if err := r.Client.Get(ctx, req.NamespacedName, set); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.reconcileTimeout())
	defer cancel()

	deleting := !set.DeletionTimestamp.IsZero()
	switch held := controllerutil.ContainsFinalizer(set, v1.Finalizer); {
	case deleting && !held:
		return reconcile.Result{}, nil
	case !deleting && !held:
		if err := patchFinalizerOf(ctx, r.Client, set, controllerutil.AddFinalizer); err != nil {
			return requeueOnConflict(err)
		}
	}
	s := &setState{set: set, base: set.DeepCopy(), now: r.now(), deleting: deleting, suspended: set.Spec.Suspend,
		children: map[string]*v1.TenantPurchasePolicy{}}
	defer func() {
		result, retErr = r.finish(ctx, s)
	}()
	for _, run := range r.setSteps(s) {
		if s.err = run(ctx, s); s.err != nil {
			break
		}
	}
	return reconcile.Result{}, nil
}

// setSteps are the steps of a run, in order. A suspended set only reads its
// children (status still reports the fleet); a set being deleted deletes
// its children.
func (r *TenantPurchasePolicySetReconciler) setSteps(s *setState) []setStep {
	switch {
	case s.deleting:
		return []setStep{r.readChildren, r.deleteChildren}
	case s.suspended:
		return []setStep{r.readChildren, r.planChildren, r.observeChildren}
	}
	return []setStep{r.discoverCustomers, r.readChildren, r.planChildren, r.writeChildren, r.pruneChildren}
}

// readChildren lists the namespace's policies from the cache, once (no deep
// copy: 10,000 children cost no allocation), and sorts them into the set's
// children and the names held by other policies.
func (r *TenantPurchasePolicySetReconciler) readChildren(ctx context.Context, s *setState) error {
	var list v1.TenantPurchasePolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(s.set.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the policies of namespace %s: %w", s.set.Namespace, err)
	}
	s.owned, s.foreign = map[string]*v1.TenantPurchasePolicy{}, map[string]bool{}
	for i := range list.Items {
		p := &list.Items[i]
		if controlledBy(p, s.set) {
			s.owned[p.Name] = p
		} else {
			s.foreign[p.Name] = true
		}
	}
	return nil
}

// observeChildren takes the desired children as the cache holds them,
// writing nothing (a suspended set).
func (r *TenantPurchasePolicySetReconciler) observeChildren(_ context.Context, s *setState) error {
	for _, d := range s.desired {
		if c := s.owned[d.name]; c != nil {
			s.children[d.name] = c
		}
	}
	return nil
}

// deleteChildren deletes every child of a set being deleted; each follows
// its deletionPolicy, and the set's finalizer stays until the API server
// has none left (an uncached check). With the orphan finalizer
// (kubectl delete --cascade=orphan) the children are left to Kubernetes'
// garbage collector, which drops their owner reference.
//
// Sets setState.remaining.
func (r *TenantPurchasePolicySetReconciler) deleteChildren(ctx context.Context, s *setState) error {
	if controllerutil.ContainsFinalizer(s.set, metav1.FinalizerOrphanDependents) {
		return nil
	}
	var deleted []string
	for _, name := range sortedKeys(s.owned) {
		c := s.owned[name]
		if c.DeletionTimestamp.IsZero() {
			if err := r.deleteChild(ctx, c); err != nil {
				return fmt.Errorf("deleting child %s: %w", name, err)
			}
			deleted = append(deleted, name)
		}
	}
	if len(deleted) > 0 {
		s.event(eventNormal, v1.EventChildPruned, "the set is being deleted: deleted %d children (%s); each follows its deletionPolicy", len(deleted), truncateList(deleted, 10))
	}
	s.remaining = len(s.owned)
	if s.remaining > 0 {
		return nil
	}
	var list v1.TenantPurchasePolicyList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(s.set.Namespace), client.MatchingLabels{v1.SetLabel: s.set.Name}); err != nil {
		return fmt.Errorf("listing the children of %s: %w", s.set.Name, err)
	}
	for i := range list.Items {
		if controlledBy(&list.Items[i], s.set) {
			s.remaining++
		}
	}
	return nil
}

// finish decides the run's outcome, records status (once, only when it
// changed, optimistic lock, own short context), releases the finalizer of a
// deleted set, emits the run's Events and schedules the next run.
func (r *TenantPurchasePolicySetReconciler) finish(ctx context.Context, s *setState) (reconcile.Result, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	fleet := summarizeFleet(s)
	o := computeSetOutcome(s, fleet)
	recordSetStatus(s, o, fleet)
	if !equality.Semantic.DeepEqual(s.base.Status, s.set.Status) {
		patch := client.MergeFromWithOptions(s.base, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, s.set, patch); err != nil {
			return requeueOnConflict(client.IgnoreNotFound(err))
		}
		if d := s.set.Status.Discovery; d != nil && d.LastAttemptTime != nil {
			r.discovered.Store(s.set.UID, d.LastAttemptTime.Time)
		}
	}
	if o.kind == outcomeDeleted {
		if err := patchFinalizerOf(ctx, r.Client, s.set, controllerutil.RemoveFinalizer); client.IgnoreNotFound(err) != nil {
			return requeueOnConflict(err)
		}
	}
	r.flushSetEvents(s, o)
	if o.kind != outcomeSucceeded && o.kind != outcomeSuspended {
		logf.FromContext(ctx).Info("policy set not ready", "reason", o.reason, "message", o.message)
	}
	return scheduleSet(s, o)
}

// requested tells whether the reconcile-now annotation asks for a run the
// controller has not handled yet.
func (s *setState) requested() bool {
	v := s.set.Annotations[v1.RequestedAtAnnotation]
	return v != "" && v != s.set.Status.LastHandledReconcileAt
}

// wake asks for a run at t.
func (s *setState) wake(t time.Time) { s.wakeAt = append(s.wakeAt, t) }

// event queues an Event about the set; finish emits the queue after the
// status patch.
func (s *setState) event(eventType, reason, format string, args ...any) {
	s.events = append(s.events, eventNote{eventType, reason, fmt.Sprintf(format, args...)})
}

// setCondition sets a condition of the set at its generation.
func (s *setState) setCondition(t string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&s.set.Status.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
		Message: truncate(message, 32768), ObservedGeneration: s.set.Generation})
}

// noteWrite records a child written in this run.
func (s *setState) noteWrite(verb, name string) {
	switch verb {
	case writeCreated:
		s.created = append(s.created, name)
	case writeUpdated:
		s.updated = append(s.updated, name)
	case writeRestored:
		s.restored = append(s.restored, name)
	}
}

func (r *TenantPurchasePolicySetReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *TenantPurchasePolicySetReconciler) reconcileTimeout() time.Duration {
	if r.ReconcileTimeout > 0 {
		return r.ReconcileTimeout
	}
	return 2 * time.Minute
}

func (r *TenantPurchasePolicySetReconciler) coalesce() time.Duration {
	if r.Coalesce > 0 {
		return r.Coalesce
	}
	return defaultCoalesce
}
