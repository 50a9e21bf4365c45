// Package controllers holds the TenantPurchasePolicy and
// TenantPurchasePolicySet reconcilers: it keeps the self-service purchase
// policy of a Microsoft 365 tenant matching the resource and reports drift,
// purchases and takeovers in status. It decides everything a run does and
// how it ended (one outcome per run, computeOutcome): drift, ownership,
// writes, tracking, conditions, Events, metrics and the next run; and, for a
// set, its children, discovery and pruning. It must not call Microsoft
// except through the interfaces it owns (interfaces.go), write a policy's
// status more than once per run (plus the adoption snapshot), emit Events
// (other than announcements, which tell once-only facts under names that
// make them idempotent) or metrics before that write succeeded, or read
// Secrets through the cache.
package controllers

import (
	"context"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"golang.org/x/sync/singleflight"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/plan"
)

// TenantPurchasePolicyReconciler reconciles TenantPurchasePolicy objects.
type TenantPurchasePolicyReconciler struct {
	// Client is the manager's cached client (policies, status, events).
	Client client.Client
	// APIReader reads Secrets, ServiceAccounts and ownership (tenant Leases,
	// owners, claimants) uncached.
	APIReader client.Reader
	// Claimants reads the policies of a tenant for an ownership election
	// and the owner a Lease names: uncached (APIReader) when shards or
	// watched namespaces hide some policies from the cache, so they see
	// each other; the cache when it holds every policy, where an uncached
	// List would cost the API server a scan of the whole fleet per
	// election (O(N²) for a fleet's first sync). nil means APIReader.
	Claimants client.Reader
	// LeaseNamespace holds the tenant Leases that record ownership (every
	// shard must use the same one); empty means DefaultLeaseNamespace.
	LeaseNamespace string
	// Recorder emits Events.
	Recorder recorder.EventRecorder

	// Policies and Directory connect to a tenant's licensing and Graph APIs,
	// Settings to its tenant-wide acquisition settings (Graph).
	Policies  PolicyAPI
	Directory DirectoryAPI
	Settings  SettingsAPI
	// Credentials turns the material loadCredentials reads into a token credential.
	Credentials CredentialSource
	// Assertions requests ServiceAccount tokens for workload identity.
	Assertions clustercreds.AssertionSource
	// RefreshTokens opens delegated refresh-token stores.
	RefreshTokens clustercreds.RefreshTokenStores

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReconcileTimeout bounds one reconcile; status is written afterwards with
	// its own short context.
	ReconcileTimeout time.Duration
	// Metrics records counters; nil disables them.
	Metrics *Metrics
	// WritesPerTenant bounds the PUTs of one tenant in flight at once; 0
	// means DefaultWritesPerTenant.
	WritesPerTenant int

	// secretReads lets concurrent runs that read one Secret (a partner's,
	// shared by many policies) share one GET (clustercreds.Loader).
	secretReads singleflight.Group
}

// syncState carries one reconcile from step to step.
type syncState struct {
	policy *v1.TenantPurchasePolicy
	// base is the object as read: Events and metrics compare with it.
	base *v1.TenantPurchasePolicy
	// written is the object as this run last wrote it (the adoption
	// snapshot, recordAdoption): what the tenant settings' adoption
	// snapshot adds its rows to; nil until then.
	written *v1.TenantPurchasePolicy
	now     time.Time
	// deleting and suspended are read once, when the run starts.
	deleting, suspended bool

	// cred is the token credential loadCredentials made; policies and
	// directory are the tenant's clients it connected.
	cred       azcore.TokenCredential
	policies   TenantPolicies
	directory  TenantDirectory
	settings   TenantSettingsAPI
	products   []licensing.Item
	offerTypes []licensing.Item
	// unlisted counts the items of the product list the client could not
	// return (no usable ID); they count as dropped in status.
	unlisted int32
	// productList and subscriptionList are what this run's product (and
	// offer-type) lists and Graph's subscription lists held beyond the items
	// used (status.listAnomalies); nil when not read.
	productList, subscriptionList *m365.ListInfo
	plan                          *plan.Plan

	// err stops the remaining steps; retryErr (a product Microsoft is not
	// ready to write: softRetry) and softErr (unknown products, rejected or
	// not applied values: softStall) are reported after every other product
	// was handled. computeOutcome turns them into the run's outcome.
	err      error
	retryErr error
	softErr  error
	// conflictOwner names the policy that owns the tenant when this one lost.
	conflictOwner string
	ownerChecked  bool
	// acted is true once act recorded the products of this run;
	// productsDropped is how many products it could not record.
	acted           bool
	productsDropped int32
	// tracking is the outcome of subscription tracking; nil when not run.
	tracking *trackingOutcome
	// tenantSettings is the outcome of the tenant settings step; nil when
	// not run.
	tenantSettings *settingsOutcome
	// wakeAt are earlier times at which the policy needs a run (rule expiry,
	// refund warnings).
	wakeAt []time.Time
	// events are emitted by finish, once status is recorded (syncState.event).
	events []eventNote
	// announcements are created by finish before status is recorded
	// (syncState.announce).
	announcements []announcement
	// purchases counts the new self-service subscriptions this run detected
	// (each with its SelfServicePurchase Event).
	purchases int
}

// step is one named part of a run. It reads and writes s and returns nil, or
// the error that stops the run (see errors.go for the kinds).
type step func(ctx context.Context, s *syncState) error

// RBAC: only what the code calls (README "Permissions"; test/install holds the allow-list).
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicies,verbs=list;watch;patch
// +kubebuilder:rbac:groups=commerce.tenantpolicy.io,resources=tenantpurchasepolicies/status,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile makes one tenant match its policy: it runs the policy's steps,
// then finish records status once, releases the finalizer of a deleted
// policy, emits Events and metrics and schedules the next run, all from the
// run's one outcome.
func (r *TenantPurchasePolicyReconciler) Reconcile(ctx context.Context, req reconcile.Request) (result reconcile.Result, retErr error) {
	policy := &v1.TenantPurchasePolicy{}
	if err := r.Client.Get(ctx, req.NamespacedName, policy); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.reconcileTimeout())
	defer cancel()

	deleting := !policy.DeletionTimestamp.IsZero()
	switch held := controllerutil.ContainsFinalizer(policy, v1.Finalizer); {
	case deleting && !held:
		return reconcile.Result{}, nil // released: nothing left to do
	case !deleting && !held:
		if err := r.patchFinalizer(ctx, policy, controllerutil.AddFinalizer); err != nil {
			return requeueOnConflict(err)
		}
	}

	s := &syncState{policy: policy, base: policy.DeepCopy(), now: r.now(), deleting: deleting, suspended: policy.Spec.Suspend}
	defer func() {
		result, retErr = r.finish(ctx, s)
	}()
	for _, run := range r.steps(s) {
		if s.err = run(ctx, s); s.err != nil {
			break
		}
	}
	return reconcile.Result{}, nil
}

// steps are the named steps of a run, in order. A suspended policy runs none
// (no call to Microsoft); a policy being deleted runs its deletionPolicy
// (deleteSteps). A new step goes here, with a doc comment saying what status
// it sets.
func (r *TenantPurchasePolicyReconciler) steps(s *syncState) []step {
	switch {
	case s.suspended:
		return nil
	case s.deleting:
		return r.deleteSteps(s.policy)
	}
	return []step{
		r.checkTenantID,
		r.loadCredentials,
		r.observeTenant,
		r.computePlan,
		r.resolveOwnership,
		r.act,
		r.reconcileTenantSettings,
		r.trackSubscriptions,
		r.checkRefreshToken,
	}
}

// finish decides the run's outcome, records status (once, optimistic lock,
// own short context), releases the finalizer when the outcome says so, then
// emits the run's Events and metrics, and schedules the next run. A run whose
// status write (or finalizer release) lost a conflict is repeated on fresh
// data and tells nothing, so Events and counters never count twice.
func (r *TenantPurchasePolicyReconciler) finish(ctx context.Context, s *syncState) (reconcile.Result, error) {
	// Own context: a run that ran out of time still records why.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	o := computeOutcome(s)
	recordStatus(s, o)
	r.announceAll(ctx, s)
	if err := r.writeStatus(ctx, s); err != nil {
		return requeueOnConflict(client.IgnoreNotFound(err))
	}
	if o.releasesFinalizer() {
		if err := r.patchFinalizer(ctx, s.policy, controllerutil.RemoveFinalizer); client.IgnoreNotFound(err) != nil {
			return requeueOnConflict(err)
		}
		if err := r.releaseClaim(ctx, s.policy); err != nil {
			logf.FromContext(ctx).Info("ownership Lease left behind", "tenant", s.policy.Spec.TenantID, "error", err.Error())
		}
	}
	r.flushEvents(s, o)
	r.Metrics.observe(s, o)
	logOutcome(ctx, s, o)
	return schedule(s, o)
}

// logOutcome logs why a run did not converge (transient errors are logged by
// controller-runtime when returned). Messages are the conditions' own, which
// never carry credentials.
func logOutcome(ctx context.Context, s *syncState, o outcome) {
	c := meta.FindStatusCondition(s.policy.Status.Conditions, v1.ReadyCondition)
	if o.releasesFinalizer() || c == nil || c.Status == metav1.ConditionTrue {
		return
	}
	logf.FromContext(ctx).Info("policy not ready", "tenant", s.policy.Spec.TenantID, "reason", c.Reason, "message", c.Message)
}

// statusWriteTimeout bounds what finish writes (status, finalizer), which
// runs on its own context so a reconcile that ran out of time still records
// why.
const statusWriteTimeout = 10 * time.Second

// writeStatus writes status, kept within the CRD's bounds (boundStatus),
// whole (an update of the status subresource) with an optimistic lock on
// the resourceVersion the run read, or that its last write returned. An
// update costs the API server less than a merge patch of the same status:
// it has no patch to apply to the stored object, only the one to decode.
func (r *TenantPurchasePolicyReconciler) writeStatus(ctx context.Context, s *syncState) error {
	boundStatus(&s.policy.Status)
	return r.Client.Status().Update(ctx, s.policy)
}

func (r *TenantPurchasePolicyReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *TenantPurchasePolicyReconciler) reconcileTimeout() time.Duration {
	if r.ReconcileTimeout > 0 {
		return r.ReconcileTimeout
	}
	return 2 * time.Minute
}

// patchFinalizer adds or removes the finalizer with a merge patch of
// metadata.finalizers only (optimistic lock). A full Update would send the
// whole spec back as the Go types encode it, and a value the API server
// stored in another spelling (a defaulted duration "2h" comes back as
// "2h0m0s") would count as a spec change: a new generation and a second,
// needless reconcile of every new policy.
func (r *TenantPurchasePolicyReconciler) patchFinalizer(ctx context.Context, policy *v1.TenantPurchasePolicy, change func(client.Object, string) bool) error {
	return patchFinalizerOf(ctx, r.Client, policy, change)
}

// patchFinalizerOf is patchFinalizer for any object (a policy or a set).
func patchFinalizerOf(ctx context.Context, c client.Client, obj client.Object, change func(client.Object, string) bool) error {
	patch := client.MergeFromWithOptions(obj.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	if !change(obj, v1.Finalizer) {
		return nil
	}
	return c.Patch(ctx, obj, patch)
}

// requeueOnConflict runs the policy again (rate limited) when it changed
// since it was read; other errors are returned for backoff.
func requeueOnConflict(err error) (reconcile.Result, error) {
	if err == nil {
		return reconcile.Result{}, nil
	}
	if apierrors.IsConflict(err) {
		return reconcile.Result{Requeue: true}, nil //nolint:staticcheck // a conflict requeues once, with rate limiting
	}
	return reconcile.Result{}, err
}
