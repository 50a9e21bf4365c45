package v1alpha1

// Condition types. Ready, Reconciling and Stalled follow kstatus, so Argo CD,
// Flux and kubectl wait read the policy like any other resource:
// Reconciling=True is InProgress, Stalled=True is Failed, Ready=True with
// neither is Current. Reconciling and Stalled are never True together.
const (
	// ReadyCondition (positive polarity) is True when the last sync succeeded:
	// in Enforce mode the tenant matches the policy, in Observe mode the
	// tenant was read (Drifted tells whether it matches).
	ReadyCondition = "Ready"

	// ReconcilingCondition (abnormal-true) is True while the controller waits
	// to go on (Microsoft's Retry-After, or an older policy of the tenant
	// authenticating first) or retries a transient error. Status is written
	// once, at the end of a run, so a spec change not yet synced shows as
	// status.observedGeneration < metadata.generation, which kstatus reads as
	// InProgress too.
	ReconcilingCondition = "Reconciling"

	// StalledCondition (abnormal-true) is True when retrying cannot help and a
	// person must act; its reason says what is wrong.
	StalledCondition = "Stalled"

	// DriftedCondition (abnormal-true) is True when some managed product
	// differs from its desired value after the last sync.
	DriftedCondition = "Drifted"

	// ConflictCondition (abnormal-true) is True when another Enforce policy
	// owns the tenant; its message names the owner.
	ConflictCondition = "Conflict"

	// SubscriptionTrackingDegradedCondition (abnormal-true) is True when
	// Microsoft Graph fails or forbids the reads subscription tracking needs,
	// while policy enforcement goes on.
	SubscriptionTrackingDegradedCondition = "SubscriptionTrackingDegraded"

	// TenantSettingsDegradedCondition (abnormal-true) is True when some
	// managed tenant setting could not be read or written (a permission is
	// missing, the cloud does not offer its resource, Graph fails), while
	// the products and the other settings are still enforced. Absent while
	// spec.tenantSettings manages nothing.
	TenantSettingsDegradedCondition = "TenantSettingsDegraded"
)

// Reasons of the TenantSettingsDegraded condition. Forbidden (of Stalled)
// says a permission is missing, its message names it; GraphUnavailable (of
// SubscriptionTrackingDegraded) that Graph throttled, failed or timed out.
const (
	// ReasonSettingsHealthy: every managed setting was read (and, in
	// Enforce mode, written where it differed).
	ReasonSettingsHealthy = "SettingsHealthy"
	// ReasonNotOfferedInThisCloud: Microsoft Graph answered 404 or 400 for
	// the beta admin/appsAndServices resource: this cloud (a national
	// cloud, or a tenant without the beta API) does not offer it.
	ReasonNotOfferedInThisCloud = "NotOfferedInThisCloud"
)

// Reasons of the Ready condition.
const (
	// ReasonSucceeded: the tenant matches the policy (Enforce) or was read (Observe).
	ReasonSucceeded = "Succeeded"
	// ReasonSuspended: spec.suspend is true; no call goes to Microsoft.
	ReasonSuspended = "Suspended"
	// ReasonDeleting: the policy is being deleted; the message says whether
	// deletionPolicy is done or what keeps the finalizer.
	ReasonDeleting = "Deleting"
)

// Reasons of Reconciling=True (and Ready=False): the controller goes on by itself.
const (
	// ReasonWaitingForOlderPolicy: a policy in its first run lets an older
	// Enforce policy of the tenant, not yet authenticated, authenticate first
	// (a few seconds), so two new policies never both write.
	ReasonWaitingForOlderPolicy = "WaitingForOlderPolicy"
	// ReasonThrottled: Microsoft answered 429/503 with Retry-After; the next try waits for it.
	ReasonThrottled = "Throttled"
	// ReasonTransientError: 5xx, timeout or connection failure; retried with backoff.
	ReasonTransientError = "TransientError"
)

// Reasons of Stalled=True: a person must act. A stalled policy still re-checks
// at spec.interval.
const (
	// ReasonSecretNotFound: the referenced Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyNotFound: the Secret lacks the referenced key.
	ReasonSecretKeyNotFound = "SecretKeyNotFound"
	// ReasonInvalidCertificate: the certificate Secret holds no usable certificate and key.
	ReasonInvalidCertificate = "InvalidCertificate"
	// ReasonInvalidCredentials: the credential material cannot be used as it is.
	ReasonInvalidCredentials = "InvalidCredentials"
	// ReasonServiceAccountNotFound: the workload identity ServiceAccount does not exist.
	ReasonServiceAccountNotFound = "ServiceAccountNotFound"
	// ReasonServiceAccountNotAnnotated: the ServiceAccount lacks
	// azure.workload.identity/client-id equal to auth.clientID.
	ReasonServiceAccountNotAnnotated = "ServiceAccountNotAnnotated"
	// ReasonAuthenticationFailed: Entra ID refused the credential (401).
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonForbidden: Microsoft answered 403: a permission or role is missing.
	ReasonForbidden = "Forbidden"
	// ReasonUnknownProduct: a rule names a product the tenant does not have.
	ReasonUnknownProduct = "UnknownProduct"
	// ReasonRejected: Microsoft refused a value for good (400 with a
	// Microsoft error); not re-sent until the spec changes or 24 hours pass.
	ReasonRejected = "Rejected"
	// ReasonWriteNotApplied: Microsoft accepted a value 3 times in a row but
	// the tenant kept showing another; not re-sent until desired changes, the
	// tenant shows it, or 24 hours pass. Every other product is enforced.
	ReasonWriteNotApplied = "WriteNotApplied"
	// ReasonTenantIDNotLowerCase: spec.tenantID (written before the schema
	// required lower case) is not in lower case, so this policy cannot find
	// the other policies of its tenant; it writes nothing. Recreate it with
	// the lower-case ID.
	ReasonTenantIDNotLowerCase = "TenantIDNotLowerCase"
	// ReasonConflictLost: another Enforce policy owns the tenant.
	ReasonConflictLost = "ConflictLost"
	// ReasonRefreshTokenNotSaved: Entra rotated the delegated refresh token
	// but its Secret refused the new one (immutable, or the write is denied).
	// The access token obtained is used until it expires; nothing is
	// redeemed again meanwhile.
	ReasonRefreshTokenNotSaved = "RefreshTokenNotSaved"
)

// Reasons of the Drifted condition.
const (
	// ReasonInSync: every managed product has its desired value.
	ReasonInSync = "InSync"
	// ReasonDriftDetected: some managed product differs (Observe mode, or a write failed).
	ReasonDriftDetected = "DriftDetected"
)

// Reasons of the Conflict condition.
const (
	// ReasonTenantOwned: another Enforce policy owns the tenant (Conflict=True).
	ReasonTenantOwned = "TenantOwnedByAnotherPolicy"
	// ReasonOwner: this policy owns the tenant, or is in Observe mode (Conflict=False).
	ReasonOwner = "NoConflict"
)

// Reasons of the SubscriptionTrackingDegraded condition.
const (
	// ReasonGraphForbidden: Graph answered 401/403 (Organization.Read.All or User.Read.All missing).
	ReasonGraphForbidden = "GraphForbidden"
	// ReasonGraphUnavailable: Graph failed (5xx, timeout, throttled); also
	// a reason of TenantSettingsDegraded.
	ReasonGraphUnavailable = "GraphUnavailable"
	// ReasonTrackingHealthy: subscriptions were read (Degraded=False).
	ReasonTrackingHealthy = "TrackingHealthy"
	// ReasonTrackingDisabled: spec.subscriptions.track is false (Degraded=False).
	ReasonTrackingDisabled = "TrackingDisabled"
)

// Event reasons.
const (
	EventAdopted              = "Adopted"
	EventDriftDetected        = "DriftDetected"
	EventDriftCorrected       = "DriftCorrected"
	EventNewProductDetected   = "NewProductDetected"
	EventWriteFailed          = "WriteFailed"
	EventWriteNotApplied      = "WriteNotApplied"
	EventProductMissing       = "ProductMissing"
	EventProductRemoved       = "ProductRemoved"
	EventThrottled            = "Throttled"
	EventAuthFailed           = "AuthenticationFailed"
	EventConflict             = "Conflict"
	EventRestored             = "Restored"
	EventRestoreSkipped       = "RestoreSkipped"
	EventSelfServicePurchase  = "SelfServicePurchaseDetected"
	EventRefundWindowClosing  = "RefundWindowClosing"
	EventTakeoverDetected     = "TakeoverDetected"
	EventCancellationDetected = "CancellationDetected"
	EventTrialExpired         = "TrialExpired"
	// EventListAnomalies (Warning): a Microsoft list held duplicate,
	// unusable or over-long items (status.listAnomalies).
	EventListAnomalies = "ListAnomalies"
)

// Conditions of a TenantPurchasePolicySet. Ready, Reconciling and Stalled
// mean what they mean for a policy (kstatus), read over the fleet: Ready=True
// when every child is written and Ready (or suspended); Reconciling=True
// while children are being created or have not synced yet, or while
// discovery retries; Stalled=True when a person must act on the set (its
// discovery credentials, a child it cannot write) or on a child (Stalled,
// in conflict). The set's own reasons come first.
const (
	// DiscoveryFailedCondition (abnormal-true) is True when the latest
	// attempt to list the partner's customers failed; the set goes on with
	// the customers the last successful discovery found.
	DiscoveryFailedCondition = "DiscoveryFailed"

	// PruneHeldCondition (abnormal-true) is True when the latest discovery
	// cannot be trusted to prune: it failed, answered no customer, or
	// missed more customers than spec.discovery allows. No child is pruned
	// for a missing customer while it is True.
	PruneHeldCondition = "PruneHeld"
)

// Reasons of a set's Ready, Reconciling and Stalled conditions (besides
// Succeeded, Suspended, Deleting, Throttled, TransientError and the
// credential reasons of the discovery auth, which are a policy's).
const (
	// ReasonChildrenProgressing: children were created or changed and have
	// not all synced yet (Reconciling=True).
	ReasonChildrenProgressing = "ChildrenProgressing"
	// ReasonChildrenStalled: some children are Stalled (in conflict, missing
	// credentials, ...); status.notReady names them (Stalled=True).
	ReasonChildrenStalled = "ChildrenStalled"
	// ReasonChildNotWritten: a child could not be written: its name is held
	// by a policy the set does not own, or the API server refused the merged
	// spec (Stalled=True).
	ReasonChildNotWritten = "ChildNotWritten"
	// ReasonDiscoveryForbidden: the partner tenant answered 403 to the
	// customer list: DelegatedAdminRelationship.Read.All (or, delegated,
	// the Admin Agent role) is missing (Stalled=True).
	ReasonDiscoveryForbidden = "DiscoveryForbidden"
	// ReasonTooManyCustomers: discovery found more customers than a set
	// holds (MaxDiscoveredTenants) (Stalled=True).
	ReasonTooManyCustomers = "TooManyCustomers"
)

// Reasons of the per-child entries of status.notReady that are not the
// child's own Ready reason.
const (
	// ReasonNameTaken: the child's name (and the fallback <set>-<tenantID>)
	// is held by a policy the set does not own.
	ReasonNameTaken = "NameTaken"
	// ReasonNotSynced: the child exists but has not synced its spec yet.
	ReasonNotSynced = "NotSynced"
)

// Reasons of the DiscoveryFailed condition (True: the error's reason).
const (
	// ReasonDiscoverySucceeded: the customers were listed (False).
	ReasonDiscoverySucceeded = "DiscoverySucceeded"
)

// Reasons of the PruneHeld condition.
const (
	// ReasonPruneAllowed: the latest discovery was trusted (False).
	ReasonPruneAllowed = "PruneAllowed"
	// ReasonPruneDisabled: spec.prune is false; nothing is ever pruned (False).
	ReasonPruneDisabled = "PruneDisabled"
	// ReasonDiscoveryFailedHold: the latest discovery failed (True).
	ReasonDiscoveryFailedHold = "DiscoveryFailed"
	// ReasonDiscoveryEmpty: the latest discovery listed no customer while
	// the previous one listed some (True).
	ReasonDiscoveryEmpty = "DiscoveryEmpty"
	// ReasonDiscoveryIncomplete: the latest discovery's answer held entries
	// without a usable tenant ID (null items, missing fields), and missed
	// known customers (True).
	ReasonDiscoveryIncomplete = "DiscoveryIncomplete"
	// ReasonTooManyMissing: the latest discovery missed more customers than
	// spec.discovery.maxDropPercent and maxDropCount allow (True).
	ReasonTooManyMissing = "TooManyMissing"
)

// Event reasons of a set.
const (
	EventChildCreated       = "ChildCreated"
	EventChildUpdated       = "ChildUpdated"
	EventChildRestored      = "ChildRestored"
	EventChildPruned        = "ChildPruned"
	EventChildNotWritten    = "ChildNotWritten"
	EventCustomerDiscovered = "CustomerDiscovered"
	EventCustomerMissing    = "CustomerMissing"
	EventDiscoveryFailed    = "DiscoveryFailed"
	EventPruneHeld          = "PruneHeld"
	EventNameCollision      = "NameCollision"
)

// Annotations.
const (
	// RequestedAtAnnotation asks for an immediate reconcile when its value changes.
	RequestedAtAnnotation = "reconcile.tenantpolicy.io/requestedAt"
	// Finalizer guards deletion so deletionPolicy can run.
	Finalizer = "commerce.tenantpolicy.io/finalizer"
)
