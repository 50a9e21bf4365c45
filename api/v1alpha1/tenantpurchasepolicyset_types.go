package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SetLabel is the label every child of a TenantPurchasePolicySet carries;
// its value is the set's name.
const SetLabel = "commerce.tenantpolicy.io/set"

// SetLabelsAnnotation names, comma-separated and sorted, the label keys the
// set applied to a child, so the set can tell which labels to take away when
// its childLabels change (the controller's cache holds no managed fields).
const SetLabelsAnnotation = "commerce.tenantpolicy.io/set-labels"

// Bounds of a set, as the CRD schema states them (the markers below).
const (
	// MaxSetTenants bounds spec.tenants and spec.discovery.delegatedAdminCustomers.exclude.
	MaxSetTenants = 5000
	// MaxDiscoveredTenants bounds status.discovery.tenants: a partner that
	// lists more customers stalls the set (split the customers over sets
	// with exclude).
	MaxDiscoveredTenants = 10000
	// MaxNotReadyReported bounds status.notReady; the summary counts them all.
	MaxNotReadyReported = 20
	// MaxSetNameLength bounds a set's name: it is a label value on every child.
	MaxSetNameLength = 63
)

// PolicySetTemplate is the policy every child of a set gets: a
// TenantPurchasePolicy spec without tenantID.
// +kubebuilder:validation:XValidation:rule="!has(self.tenantID)",message="the template applies to many tenants and must not set tenantID: list tenants in spec.tenants or discover them with spec.discovery",fieldPath=".tenantID"
type PolicySetTemplate struct {
	TenantPurchasePolicyTemplate `json:",inline"`

	// tenantID is refused here: each child's tenantID comes from
	// spec.tenants or from discovery. The field exists only so that a
	// policy spec pasted into the template is rejected with that message
	// instead of being silently pruned.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	TenantID string `json:"tenantID,omitempty"`
}

// PolicyOverrides change the template for one listed tenant. Only these
// fields can be overridden; auth, interval and deletionPolicy are the
// template's for every child.
type PolicyOverrides struct {
	// mode replaces the template's mode.
	// +optional
	Mode *Mode `json:"mode,omitempty"`

	// default replaces the template's default.
	// +optional
	Default *RulePolicy `json:"default,omitempty"`

	// products are merged with the template's products by productID: a rule
	// here replaces the template's rule for that product (Unmanaged leaves
	// the product alone in this tenant), other rules are added. At most 32:
	// an override is an exception (a child holds at most 256 rules).
	// +optional
	// +listType=map
	// +listMapKey=productID
	// +kubebuilder:validation:MaxItems=32
	Products []ProductRule `json:"products,omitempty"`

	// offerTypes are merged with the template's offer types by offerType, as
	// products are.
	// +optional
	// +listType=map
	// +listMapKey=offerType
	// +kubebuilder:validation:MaxItems=4
	OfferTypes []OfferTypeRule `json:"offerTypes,omitempty"`

	// subscriptions replaces the template's subscriptions as a whole: fields
	// left out take their defaults, not the template's values.
	// +optional
	Subscriptions *SubscriptionTracking `json:"subscriptions,omitempty"`

	// tenantSettings are merged with the template's tenantSettings field by
	// field: a field set here replaces the template's (Unmanaged leaves the
	// setting alone in this tenant), a field left out keeps the template's.
	// +optional
	TenantSettings *TenantSettingsOverrides `json:"tenantSettings,omitempty"`

	// suspend replaces the template's suspend.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`
}

// TenantSettingsOverrides change some of the template's tenantSettings for
// one tenant; a field left out keeps the template's value (so, unlike
// TenantSettings, no field has a default).
type TenantSettingsOverrides struct {
	// emailBasedSubscriptions replaces the template's emailBasedSubscriptions.
	// +optional
	EmailBasedSubscriptions SettingPolicy `json:"emailBasedSubscriptions,omitempty"`
	// emailVerifiedUsersJoin replaces the template's emailVerifiedUsersJoin.
	// +optional
	EmailVerifiedUsersJoin SettingPolicy `json:"emailVerifiedUsersJoin,omitempty"`
	// trialsOnBehalfOfOrganization replaces the template's trialsOnBehalfOfOrganization.
	// +optional
	TrialsOnBehalfOfOrganization SettingPolicy `json:"trialsOnBehalfOfOrganization,omitempty"`
	// officeStore replaces the template's officeStore.
	// +optional
	OfficeStore SettingPolicy `json:"officeStore,omitempty"`
}

// SetTenant is a listed customer of a set.
type SetTenant struct {
	// tenantID is the customer's Microsoft Entra tenant ID, a lower-case GUID.
	// +required
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')",message="tenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	TenantID string `json:"tenantID"`

	// name is the suffix of the child's name, <set>-<name>; without it the
	// suffix is the first 8 characters of tenantID. Changing it replaces
	// the child (the old one is pruned and follows its deletionPolicy).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="name must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name,omitempty"`

	// overrides change the template for this tenant only.
	// +optional
	Overrides *PolicyOverrides `json:"overrides,omitempty"`
}

// DelegatedAdminCustomersDiscovery lists the partner's customers through
// Microsoft Graph (GET /tenantRelationships/delegatedAdminCustomers): every
// customer with an active granular delegated admin (GDAP) relationship.
type DelegatedAdminCustomersDiscovery struct {
	// partnerTenantID is the partner's own Microsoft Entra tenant ID, a
	// lower-case GUID.
	// +required
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')",message="partnerTenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	PartnerTenantID string `json:"partnerTenantID"`

	// auth says how to obtain Graph tokens in the partner tenant, with the
	// same options as a policy's auth (Secrets and ServiceAccounts in the
	// set's namespace). The app needs DelegatedAdminRelationship.Read.All; a
	// delegated login (refreshTokenRef) must be an Admin Agent or Global
	// Administrator of the partner tenant. Omitted, template.auth is used.
	// +optional
	Auth *Auth `json:"auth,omitempty"`

	// exclude lists customers that never get a child, even though discovery
	// finds them. Listed tenants (spec.tenants) are not affected.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=5000
	// +kubebuilder:validation:items:MaxLength=36
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')",message="exclude entries must be lower-case GUIDs such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write them in lower case"
	Exclude []string `json:"exclude,omitempty"`

	// interval is how often the customers are listed, at least 5m. Setting
	// the reconcile-now annotation lists them at once.
	// +optional
	// +kubebuilder:default="1h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m')",message="interval must be at least 5m"
	Interval metav1.Duration `json:"interval,omitzero"`
}

// SetDiscovery finds tenants for a set, and bounds what one discovery may
// prune.
type SetDiscovery struct {
	// delegatedAdminCustomers discovers the partner's GDAP customers.
	// +required
	DelegatedAdminCustomers *DelegatedAdminCustomersDiscovery `json:"delegatedAdminCustomers"`

	// maxDropPercent and maxDropCount hold a discovery that misses more than
	// maxDropPercent percent of the customers the previous one found, and
	// more than maxDropCount of them: it prunes nothing (PruneHeld=True)
	// until a discovery within the bounds, or until you raise them. A
	// failed or empty discovery never prunes, whatever they say.
	// +optional
	// +kubebuilder:default=20
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxDropPercent *int32 `json:"maxDropPercent,omitempty"`

	// maxDropCount: see maxDropPercent.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxDropCount *int32 `json:"maxDropCount,omitempty"`
}

// TenantPurchasePolicySetSpec is one policy for many tenants: listed ones,
// discovered ones, or both.
// +kubebuilder:validation:XValidation:rule="(has(self.tenants) && size(self.tenants) > 0) || has(self.discovery)",message="a set needs tenants, discovery or both"
type TenantPurchasePolicySetSpec struct {
	// template is the policy every child gets: a TenantPurchasePolicy spec
	// without tenantID, validated exactly as a policy's.
	// +required
	Template PolicySetTemplate `json:"template"`

	// tenants are the listed customers, at most 5000. A tenant that is also
	// discovered gets one child, with this entry's name and overrides.
	// +optional
	// +listType=map
	// +listMapKey=tenantID
	// +kubebuilder:validation:MaxItems=5000
	Tenants []SetTenant `json:"tenants,omitempty"`

	// discovery adds every customer the partner has an active admin
	// relationship with, on the next discovery after it appears.
	// +optional
	Discovery *SetDiscovery `json:"discovery,omitempty"`

	// childLabels are copied to every child, e.g. a shard label for
	// --watch-label-selector. Give the set the same shard label: a set only
	// sees the children its controller's cache holds.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="!('commerce.tenantpolicy.io/set' in self)",message="childLabels must not set commerce.tenantpolicy.io/set: the controller sets it to the set's name"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'))",message="childLabels keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, '-', '_' or '.'"
	ChildLabels map[string]LabelValue `json:"childLabels,omitempty"`

	// prune deletes the child of a tenant that left the set: removed from
	// tenants, excluded, or missing from two discoveries in a row that were
	// within the drop bounds. A pruned child follows its own
	// deletionPolicy. false never deletes a child.
	// +optional
	// +kubebuilder:default=true
	Prune *bool `json:"prune,omitempty"`

	// suspend stops the set: no discovery, no child written or pruned. The
	// children go on as they are (template.suspend suspends them).
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LabelValue is the value of a label: at most 63 letters, digits, '-', '_'
// or '.', starting and ending with a letter or digit.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
type LabelValue string

// SetSummary holds the fleet counts kubectl get shows.
type SetSummary struct {
	// tenants is the number of tenants the set manages (listed and
	// discovered, less excluded).
	// +optional
	// +kubebuilder:default=0
	Tenants int32 `json:"tenants"`
	// ready is the number of children with Ready=True.
	// +optional
	// +kubebuilder:default=0
	Ready int32 `json:"ready"`
	// drifted is the number of children with Drifted=True.
	// +optional
	// +kubebuilder:default=0
	Drifted int32 `json:"drifted"`
	// stalled is the number of children with Stalled=True.
	// +optional
	// +kubebuilder:default=0
	Stalled int32 `json:"stalled"`
	// inConflict is the number of children with Conflict=True: another
	// Enforce policy owns their tenant.
	// +optional
	// +kubebuilder:default=0
	InConflict int32 `json:"inConflict"`
	// suspended is the number of children whose spec.suspend is true.
	// +optional
	// +kubebuilder:default=0
	Suspended int32 `json:"suspended"`
	// selfServiceSubscriptions is the number of active self-service
	// subscriptions across the children.
	// +optional
	// +kubebuilder:default=0
	SelfServiceSubscriptions int32 `json:"selfServiceSubscriptions"`
}

// RefundDeadline is the self-service subscription of the fleet whose
// full-refund window closes first.
type RefundDeadline struct {
	// fullRefundUntil is when its full-refund window closes.
	// +required
	FullRefundUntil metav1.Time `json:"fullRefundUntil"`
	// policy is the child that reports it.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Policy string `json:"policy"`
	// tenantID of that child.
	// +required
	// +kubebuilder:validation:MaxLength=36
	TenantID string `json:"tenantID"`
	// subscriptionID of the self-service subscription.
	// +required
	// +kubebuilder:validation:MaxLength=64
	SubscriptionID string `json:"subscriptionID"`
	// skuPartNumber of the subscription.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	SkuPartNumber string `json:"skuPartNumber,omitempty"`
}

// DiscoveredTenant is one customer discovery found.
type DiscoveredTenant struct {
	// tenantID of the customer.
	// +required
	// +kubebuilder:validation:MaxLength=36
	TenantID string `json:"tenantID"`
	// firstSeen is the discovery that first listed it.
	// +required
	FirstSeen metav1.Time `json:"firstSeen"`
	// lastSeen is set while the customer is missing: the last discovery
	// that listed it. A listed customer was seen at lastDiscoveryTime.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// missed counts the discoveries in a row (within the drop bounds) that
	// did not list it; at 2 its child is pruned.
	// +optional
	Missed int32 `json:"missed,omitempty"`
}

// DiscoveryStatus is the result of the last successful discovery, kept so a
// restarted controller does not start from nothing.
type DiscoveryStatus struct {
	// partnerTenantID the tenants were discovered in; changing
	// spec.discovery.delegatedAdminCustomers.partnerTenantID starts over.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	PartnerTenantID string `json:"partnerTenantID,omitempty"`
	// lastAttemptTime is when customers were last listed, successfully or not.
	// +optional
	LastAttemptTime *metav1.Time `json:"lastAttemptTime,omitempty"`
	// lastDiscoveryTime is when customers were last listed successfully.
	// +optional
	LastDiscoveryTime *metav1.Time `json:"lastDiscoveryTime,omitempty"`
	// count is the number of customers that listing returned.
	// +optional
	Count int32 `json:"count,omitempty"`
	// consecutiveFailures counts the failed listings since the last
	// successful one; retries back off from 30s up to interval.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// tenants are the customers discovery found, with those missing from
	// the latest discoveries until they are pruned, at most 10000.
	// +optional
	// +listType=map
	// +listMapKey=tenantID
	// +kubebuilder:validation:MaxItems=10000
	Tenants []DiscoveredTenant `json:"tenants,omitempty"`
}

// ChildReport is a child that is not Ready, or a tenant whose child could
// not be written.
type ChildReport struct {
	// name of the child.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// tenantID of the child.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	TenantID string `json:"tenantID,omitempty"`
	// reason is the child's Ready reason, or why it could not be written
	// (NameTaken, Rejected).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Reason string `json:"reason,omitempty"`
	// message says more.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// TenantPurchasePolicySetStatus is what the set's controller observed and did.
type TenantPurchasePolicySetStatus struct {
	// observedGeneration is the spec generation the status describes; -1
	// until the controller has looked at the set.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration"`

	// conditions: Ready, Reconciling and Stalled (kstatus), DiscoveryFailed
	// and PruneHeld.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastHandledReconcileAt is the last value of the
	// reconcile.tenantpolicy.io/requestedAt annotation the controller acted
	// on (it discovers at once).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// summary holds the fleet counts shown by kubectl get.
	// +optional
	// +kubebuilder:default={}
	Summary SetSummary `json:"summary,omitempty"`

	// nextFullRefundDeadline is the fleet's self-service subscription whose
	// full-refund window closes first (only windows still open).
	// +optional
	NextFullRefundDeadline *RefundDeadline `json:"nextFullRefundDeadline,omitempty"`

	// discovery is the last discovery's result.
	// +optional
	Discovery *DiscoveryStatus `json:"discovery,omitempty"`

	// notReady lists up to 20 children that are not Ready (or could not be
	// written), by name, with their reason; summary counts them all.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	NotReady []ChildReport `json:"notReady,omitempty"`
}

// TenantPurchasePolicySet keeps one TenantPurchasePolicy per tenant from a
// single template: for listed tenants and for the customers a Microsoft
// partner discovers through its admin relationships. Its children are
// ordinary policies, labelled commerce.tenantpolicy.io/set and owned by it.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tpps,categories=m365
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a set's name must be at most 63 characters: it is the value of the label commerce.tenantpolicy.io/set on every child"
// +kubebuilder:printcolumn:name="Tenants",type=integer,JSONPath=`.status.summary.tenants`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.summary.ready`
// +kubebuilder:printcolumn:name="Drifted",type=integer,JSONPath=`.status.summary.drifted`
// +kubebuilder:printcolumn:name="Self-Service",type=integer,JSONPath=`.status.summary.selfServiceSubscriptions`
// +kubebuilder:printcolumn:name="Last Discovery",type=date,JSONPath=`.status.discovery.lastDiscoveryTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TenantPurchasePolicySet struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the template and the tenants it applies to.
	// +required
	Spec TenantPurchasePolicySetSpec `json:"spec"`

	// status is what the controller observed and did.
	// +optional
	// +default={"observedGeneration": -1}
	Status TenantPurchasePolicySetStatus `json:"status,omitempty"`
}

// TenantPurchasePolicySetList is a list of TenantPurchasePolicySet.
// +kubebuilder:object:root=true
type TenantPurchasePolicySetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TenantPurchasePolicySet `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TenantPurchasePolicySet{}, &TenantPurchasePolicySetList{})
}
