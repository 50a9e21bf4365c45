package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says whether the controller writes to Microsoft 365.
// +kubebuilder:validation:Enum=Enforce;Observe
type Mode string

const (
	// ModeEnforce makes Microsoft 365 match the policy and records what it corrected.
	ModeEnforce Mode = "Enforce"
	// ModeObserve reports how Microsoft 365 differs from the policy and writes nothing.
	ModeObserve Mode = "Observe"
)

// PolicyValue is a self-service purchase setting as Microsoft 365 knows it.
// +kubebuilder:validation:Enum=Enabled;Disabled;OnlyTrialsWithoutPaymentMethod
type PolicyValue string

const (
	// PolicyEnabled lets users buy the product and start trials.
	PolicyEnabled PolicyValue = "Enabled"
	// PolicyDisabled blocks self-service purchases and trials.
	PolicyDisabled PolicyValue = "Disabled"
	// PolicyOnlyTrials allows only trials that need no payment method; no purchase afterwards.
	PolicyOnlyTrials PolicyValue = "OnlyTrialsWithoutPaymentMethod"
)

// RulePolicy is what a product rule or the default asks for: a PolicyValue, or
// Unmanaged to leave the product alone.
// +kubebuilder:validation:Enum=Enabled;Disabled;OnlyTrialsWithoutPaymentMethod;Unmanaged
type RulePolicy string

// RuleUnmanaged means the controller never writes the product, whatever else says.
const RuleUnmanaged RulePolicy = "Unmanaged"

// DeletionPolicy says what happens to the tenant when the policy is deleted.
// +kubebuilder:validation:Enum=Orphan;Restore
type DeletionPolicy string

const (
	// DeletionOrphan leaves the tenant as it is.
	DeletionOrphan DeletionPolicy = "Orphan"
	// DeletionRestore writes back the values seen when the policy adopted each product.
	DeletionRestore DeletionPolicy = "Restore"
)

// OfferType is a class of third-party offers with its own self-service setting.
// +kubebuilder:validation:Enum=SaaS;POWERBIVISUALS;DYNAMICSCE;DYNAMICSBC
type OfferType string

// SecretKeyRef names one key of a Secret in the policy's namespace.
type SecretKeyRef struct {
	// name of the Secret, in the namespace of the TenantPurchasePolicy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key within the Secret's data that holds the value.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// SecretRef names a Secret in the policy's namespace.
type SecretRef struct {
	// name of the Secret, in the namespace of the TenantPurchasePolicy.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// WorkloadIdentity authenticates with a Kubernetes ServiceAccount token
// exchanged as a federated credential.
type WorkloadIdentity struct {
	// serviceAccountName is the ServiceAccount, in the policy's namespace, whose
	// token (audience api://AzureADTokenExchange) the controller requests and
	// exchanges. The ServiceAccount must carry the annotation
	// azure.workload.identity/client-id equal to auth.clientID.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName"`
}

// Auth says how the controller obtains Entra ID tokens for the tenant.
// +kubebuilder:validation:XValidation:rule="[has(self.clientSecretRef), has(self.clientCertificateRef), has(self.workloadIdentity), has(self.refreshTokenRef)].filter(x, x).size() == 1",message="auth must set exactly one of clientSecretRef, clientCertificateRef, workloadIdentity or refreshTokenRef"
type Auth struct {
	// clientID is the application (client) ID of the Entra app registration,
	// a GUID. With a partner's multi-tenant app it is the partner's app.
	// +required
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')",message="clientID must be a GUID such as 11111111-2222-3333-4444-555555555555"
	ClientID string `json:"clientID"`

	// clientSecretRef names the Secret key holding the app's client secret.
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`

	// clientCertificateRef names a kubernetes.io/tls Secret whose tls.crt and
	// tls.key hold the app's certificate and private key. The certificate's
	// expiry is shown in status.certificateNotAfter.
	// +optional
	ClientCertificateRef *SecretRef `json:"clientCertificateRef,omitempty"`

	// workloadIdentity exchanges a ServiceAccount token for Entra tokens
	// (workload identity federation); no secret is stored in the cluster.
	// +optional
	WorkloadIdentity *WorkloadIdentity `json:"workloadIdentity,omitempty"`

	// refreshTokenRef names the Secret key holding a delegated refresh token
	// of a Billing or Global Administrator, for tenants where only such an
	// administrator may use the licensing API. The controller writes the
	// rotated refresh token back to the same key.
	// +optional
	RefreshTokenRef *SecretKeyRef `json:"refreshTokenRef,omitempty"`
}

// ProductRule sets the self-service purchase policy of one product.
type ProductRule struct {
	// productID is Microsoft's product ID, twelve upper-case letters and
	// digits, e.g. CFQ7TTC0MM8R for Microsoft 365 Copilot.
	// +required
	// +kubebuilder:validation:MaxLength=12
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Z0-9]{12}$')",message="productID must be 12 upper-case letters or digits, e.g. CFQ7TTC0MM8R"
	ProductID string `json:"productID"`

	// policy is the value to keep the product at, or Unmanaged to never touch
	// it whatever default says.
	// +required
	Policy RulePolicy `json:"policy"`

	// until makes the rule temporary: after this time the product follows
	// default again.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
}

// OfferTypeRule sets the self-service purchase policy of a class of
// third-party offers. Offer types are not covered by default.
type OfferTypeRule struct {
	// offerType is the class of third-party offers.
	// +required
	OfferType OfferType `json:"offerType"`

	// policy is the value to keep the offer type at.
	// +required
	Policy PolicyValue `json:"policy"`
}

// SubscriptionTracking configures the tracking of self-service subscriptions
// and their takeover by the organisation.
// +kubebuilder:validation:XValidation:rule="!has(self.fullRefundWindow) || !has(self.proratedRefundWindow) || duration(self.fullRefundWindow) > duration('720h') || duration(self.proratedRefundWindow) < duration('0s') || duration(self.proratedRefundWindow) >= duration(self.fullRefundWindow)",message="proratedRefundWindow must be at least fullRefundWindow"
type SubscriptionTracking struct {
	// track reads directory subscriptions through Microsoft Graph at every sync
	// and records self-service purchases, refund windows and takeovers in
	// status. Needs the Graph application permission Organization.Read.All
	// (and User.Read.All to recognise takeovers).
	// +optional
	// +kubebuilder:default=true
	Track *bool `json:"track,omitempty"`

	// refundWarning is how long before a self-service subscription's full-refund
	// window closes the controller emits a RefundWindowClosing Event. Like the
	// windows below it is written in hours, minutes and seconds (2h, 90m):
	// days are not accepted.
	// +optional
	// +kubebuilder:default="2h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^-?([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$`
	RefundWarning *metav1.Duration `json:"refundWarning,omitempty"`

	// fullRefundWindow is how long after a purchase or renewal a self-service
	// subscription can be cancelled for a full refund; status shows its end as
	// fullRefundUntil. The default, 24h, is the rule for self-service
	// purchases; set it to what the buyers' billing program grants.
	// +optional
	// +kubebuilder:default="24h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:Pattern=`^-?([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('720h')",message="fullRefundWindow must be between 0s and 720h (30 days)"
	FullRefundWindow *metav1.Duration `json:"fullRefundWindow,omitempty"`

	// proratedRefundWindow is how long after a purchase or renewal a
	// self-service subscription can be cancelled for a prorated refund; status
	// shows its end as proratedRefundUntil. The default, 168h (7 days), is
	// Microsoft's for Microsoft Customer Agreement billing accounts; Chile
	// grants 240h (10 days).
	// +optional
	// +kubebuilder:default="168h0m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:Pattern=`^-?([0-9]+([.][0-9]+)?(h|m|s|ms|us|ns))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('720h')",message="proratedRefundWindow must be between 0s and 720h (30 days)"
	ProratedRefundWindow *metav1.Duration `json:"proratedRefundWindow,omitempty"`
}

// SettingPolicy is what spec.tenantSettings asks of one tenant-wide
// acquisition setting: Enabled, Disabled, or Unmanaged to leave it alone.
// +kubebuilder:validation:Enum=Enabled;Disabled;Unmanaged
type SettingPolicy string

const (
	// SettingEnabled keeps the setting on (the path is open to users).
	SettingEnabled SettingPolicy = "Enabled"
	// SettingDisabled keeps the setting off (the path is closed).
	SettingDisabled SettingPolicy = "Disabled"
	// SettingUnmanaged never reads nor writes the setting.
	SettingUnmanaged SettingPolicy = "Unmanaged"
)

// SettingValue is a tenant-wide acquisition setting as the tenant has it.
// +kubebuilder:validation:Enum=Enabled;Disabled
type SettingValue string

// TenantSettingName names one tenant-wide acquisition setting, as
// spec.tenantSettings spells it.
// +kubebuilder:validation:Enum=emailBasedSubscriptions;emailVerifiedUsersJoin;trialsOnBehalfOfOrganization;officeStore
type TenantSettingName string

// The tenant-wide acquisition settings.
const (
	SettingEmailBasedSubscriptions      TenantSettingName = "emailBasedSubscriptions"
	SettingEmailVerifiedUsersJoin       TenantSettingName = "emailVerifiedUsersJoin"
	SettingTrialsOnBehalfOfOrganization TenantSettingName = "trialsOnBehalfOfOrganization"
	SettingOfficeStore                  TenantSettingName = "officeStore"
)

// SettingsResource names the Microsoft Graph resource that holds a setting.
// +kubebuilder:validation:Enum=authorizationPolicy;appsAndServices
type SettingsResource string

const (
	// ResourceAuthorizationPolicy is GET/PATCH /v1.0/policies/authorizationPolicy.
	ResourceAuthorizationPolicy SettingsResource = "authorizationPolicy"
	// ResourceAppsAndServices is GET/PATCH /beta/admin/appsAndServices (a beta API).
	ResourceAppsAndServices SettingsResource = "appsAndServices"
)

// TenantSettings are the tenant-wide settings that let users acquire
// licences without the self-service purchase policy: blocking every product
// leaves these paths open. Each is Enabled, Disabled or Unmanaged (the
// default: never read, never written). Adoption, drift, Observe mode and
// deletionPolicy Restore work as for products.
type TenantSettings struct {
	// emailBasedSubscriptions says whether users may sign up for email-based
	// ("viral") subscriptions such as Power BI (free) with their work address:
	// Microsoft Graph authorizationPolicy allowedToSignUpEmailBasedSubscriptions.
	// Needs Policy.Read.All to read, Policy.ReadWrite.Authorization to write.
	// +optional
	// +kubebuilder:default=Unmanaged
	EmailBasedSubscriptions SettingPolicy `json:"emailBasedSubscriptions,omitempty"`

	// emailVerifiedUsersJoin says whether people who verified an email
	// address of one of the organisation's domains may join the directory
	// through such a sign-up: Microsoft Graph authorizationPolicy
	// allowEmailVerifiedUsersToJoinOrganization. Same permissions as
	// emailBasedSubscriptions.
	// +optional
	// +kubebuilder:default=Unmanaged
	EmailVerifiedUsersJoin SettingPolicy `json:"emailVerifiedUsersJoin,omitempty"`

	// trialsOnBehalfOfOrganization says whether users may start trials on
	// behalf of the organisation, even of products whose own policy is
	// Disabled: Microsoft Graph (beta) admin/appsAndServices
	// settings.isAppAndServicesTrialEnabled. Needs
	// OrgSettings-AppsAndServices.Read.All to read, .ReadWrite.All to write.
	// In a cloud without this beta resource the setting stays unknown
	// (TenantSettingsDegraded, reason NotOfferedInThisCloud).
	// +optional
	// +kubebuilder:default=Unmanaged
	TrialsOnBehalfOfOrganization SettingPolicy `json:"trialsOnBehalfOfOrganization,omitempty"`

	// officeStore says whether users may acquire Office Store add-ins:
	// Microsoft Graph (beta) admin/appsAndServices
	// settings.isOfficeStoreEnabled. Same permissions as
	// trialsOnBehalfOfOrganization.
	// +optional
	// +kubebuilder:default=Unmanaged
	OfficeStore SettingPolicy `json:"officeStore,omitempty"`
}

// TenantPurchasePolicySpec is the desired self-service purchase state of one
// Microsoft 365 tenant.
type TenantPurchasePolicySpec struct {
	// tenantID is the Microsoft Entra tenant (directory) ID, a GUID in lower
	// case. Entra compares tenant IDs case-insensitively, so one spelling
	// keeps two policies of one tenant from passing for two tenants. It
	// cannot be changed: create another TenantPurchasePolicy for another
	// tenant.
	// +required
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')",message="tenantID must be a lower-case GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47; Entra compares tenant IDs case-insensitively, write it in lower case"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="tenantID is immutable; create a new TenantPurchasePolicy for another tenant"
	TenantID string `json:"tenantID"`

	// The policy itself: every field but tenantID, shared with
	// TenantPurchasePolicySet's template so both validate alike.
	TenantPurchasePolicyTemplate `json:",inline"`
}

// TenantPurchasePolicyTemplate is a TenantPurchasePolicy's spec without
// tenantID: how the controller authenticates and what it keeps the tenant
// at. A policy embeds it; a TenantPurchasePolicySet applies it to every
// tenant of the set.
type TenantPurchasePolicyTemplate struct {
	// auth says how to obtain tokens for the tenant: clientID and exactly one
	// method.
	// +required
	Auth Auth `json:"auth"`

	// mode is Enforce (make the tenant match and record corrections) or
	// Observe (report differences and write nothing).
	// +optional
	// +kubebuilder:default=Enforce
	Mode Mode `json:"mode,omitempty"`

	// default is the policy of every product that products does not list,
	// including products Microsoft adds later (they start as Enabled).
	// Unmanaged leaves unlisted products alone.
	// +required
	Default RulePolicy `json:"default"`

	// products are per-product rules that take precedence over default.
	// +optional
	// +listType=map
	// +listMapKey=productID
	// +kubebuilder:validation:MaxItems=256
	Products []ProductRule `json:"products,omitempty"`

	// offerTypes are rules for third-party offer types; offer types not listed
	// are left alone.
	// +optional
	// +listType=map
	// +listMapKey=offerType
	// +kubebuilder:validation:MaxItems=4
	OfferTypes []OfferTypeRule `json:"offerTypes,omitempty"`

	// tenantSettings closes (or keeps open) the tenant-wide acquisition paths
	// the product policies do not cover: email-based sign-ups, email-verified
	// users joining, trials on behalf of the organisation, the Office Store.
	// Omitted, or a field Unmanaged: left alone, never read.
	// +optional
	TenantSettings *TenantSettings `json:"tenantSettings,omitempty"`

	// interval is how often the tenant is checked for drift, at least 1m. Each
	// run is jittered by up to 10% so fleets spread out.
	// +optional
	// +kubebuilder:default="15m0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="interval must be at least 1m"
	Interval metav1.Duration `json:"interval,omitzero"`

	// suspend stops every call to Microsoft for this policy until it is set
	// back to false. Status is kept as it was.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// deletionPolicy is Orphan (leave the tenant as it is when this policy is
	// deleted) or Restore (write back the values seen at adoption). It can be
	// changed while the policy is being deleted: Orphan then releases it at
	// once.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// subscriptions configures self-service subscription and takeover tracking.
	// +optional
	// +kubebuilder:default={}
	Subscriptions SubscriptionTracking `json:"subscriptions,omitempty"`
}

// DesiredSource says where a product's desired value came from.
// +kubebuilder:validation:Enum=Rule;Default;ExpiredRule;Unmanaged
type DesiredSource string

const (
	SourceRule        DesiredSource = "Rule"
	SourceDefault     DesiredSource = "Default"
	SourceExpiredRule DesiredSource = "ExpiredRule"
	SourceUnmanaged   DesiredSource = "Unmanaged"
)

// ProductStatus is what the controller knows of one product (or offer type).
type ProductStatus struct {
	// productID is Microsoft's product ID, or the offer type for offer types.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ProductID string `json:"productID"`

	// name is Microsoft's product name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`

	// desired is the value the policy asks for; empty when Unmanaged.
	// +optional
	Desired PolicyValue `json:"desired,omitempty"`

	// observed is the value Microsoft 365 reported at the last sync.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Observed string `json:"observed,omitempty"`

	// source is where desired came from: a rule, default, an expired rule
	// (default applies), or Unmanaged.
	// +optional
	Source DesiredSource `json:"source,omitempty"`

	// adoptedValue is the value Microsoft 365 had when this policy adopted the
	// tenant; empty for products Microsoft added later. Restore on deletion
	// writes it back.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	AdoptedValue string `json:"adoptedValue,omitempty"`

	// adoptedAt is when this policy first saw a product Microsoft added after
	// the policy adopted the tenant; products adopted with the tenant have
	// none (status.adoptedAt says when).
	// +optional
	AdoptedAt *metav1.Time `json:"adoptedAt,omitempty"`

	// corrections counts the writes of this product that Microsoft confirmed
	// (its answer to the PUT, or the next product list, showed the value).
	// +optional
	Corrections int64 `json:"corrections,omitempty"`

	// lastCorrectionTime is when a write of this product was last confirmed.
	// +optional
	LastCorrectionTime *metav1.Time `json:"lastCorrectionTime,omitempty"`

	// lastWriteTime is when the controller last sent a write of this product
	// that Microsoft accepted, kept while the write is unsettled (pendingValue
	// or unconfirmedWrites is set); lastCorrectionTime records confirmed ones.
	// +optional
	LastWriteTime *metav1.Time `json:"lastWriteTime,omitempty"`

	// pendingValue is a value the controller wrote that no read has confirmed
	// yet: the next product list either shows it (the write counts) or not
	// (the write is unconfirmed).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	PendingValue string `json:"pendingValue,omitempty"`

	// unconfirmedWrites counts the writes of the desired value in a row that
	// Microsoft accepted but a read then did not show. At 3 the value is not
	// written again (reason WriteNotApplied) until desired changes, the
	// tenant shows it, or 24 hours pass after the last write.
	// +optional
	UnconfirmedWrites int32 `json:"unconfirmedWrites,omitempty"`

	// rejected holds Microsoft's answer when it refused the value for good
	// (HTTP 400 with a Microsoft error). The write is not sent again until
	// the spec changes or 24 hours pass after rejectedAt.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Rejected string `json:"rejected,omitempty"`

	// rejectedGeneration is the spec generation rejected refers to.
	// +optional
	RejectedGeneration int64 `json:"rejectedGeneration,omitempty"`

	// rejectedAt is when Microsoft refused the value; the rejection expires
	// 24 hours later and the value is tried again.
	// +optional
	RejectedAt *metav1.Time `json:"rejectedAt,omitempty"`

	// missingSince is when the product list stopped showing this product.
	// The entry (and its adoption value) is kept, and the product neither
	// written nor counted as drift, until it returns or has been missing for
	// 3 syncs and at least an hour.
	// +optional
	MissingSince *metav1.Time `json:"missingSince,omitempty"`

	// missingSyncs counts the syncs in a row whose product list lacked this
	// product.
	// +optional
	MissingSyncs int32 `json:"missingSyncs,omitempty"`
}

// TenantSettingStatus is what the controller knows of one managed
// tenant-wide acquisition setting.
type TenantSettingStatus struct {
	// setting is the name as spec.tenantSettings spells it.
	// +required
	Setting TenantSettingName `json:"setting"`

	// resource is the Microsoft Graph resource that holds the setting:
	// authorizationPolicy (v1.0) or appsAndServices (beta).
	// +required
	Resource SettingsResource `json:"resource"`

	// desired is the value spec.tenantSettings asks for.
	// +required
	Desired SettingValue `json:"desired"`

	// observed is the value the last successful read of the resource showed;
	// empty until one succeeded. While unknownReason is set it may be stale.
	// +optional
	Observed SettingValue `json:"observed,omitempty"`

	// unknownReason says why the last sync could not read the setting
	// (Forbidden, NotOfferedInThisCloud, GraphUnavailable); the
	// TenantSettingsDegraded condition says more. Empty when it was read.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UnknownReason string `json:"unknownReason,omitempty"`

	// adoptedValue is the value the setting had when this policy first read
	// it while managing it. Restore on deletion writes it back.
	// +optional
	AdoptedValue SettingValue `json:"adoptedValue,omitempty"`

	// adoptedAt is when this policy first read the setting.
	// +optional
	AdoptedAt *metav1.Time `json:"adoptedAt,omitempty"`

	// pendingValue is a value the controller wrote (Microsoft accepted it)
	// that no read has confirmed yet; the next sync reads it back and only
	// then counts the correction.
	// +optional
	PendingValue SettingValue `json:"pendingValue,omitempty"`

	// corrections counts the writes of this setting that a read confirmed.
	// +optional
	Corrections int64 `json:"corrections,omitempty"`

	// lastCorrectionTime is when a write of this setting was last confirmed.
	// +optional
	LastCorrectionTime *metav1.Time `json:"lastCorrectionTime,omitempty"`
}

// DriftAction says what the controller did about a drift.
// +kubebuilder:validation:Enum=Corrected;Reported;CorrectionFailed;CorrectionPending
type DriftAction string

const (
	DriftCorrected        DriftAction = "Corrected"
	DriftReported         DriftAction = "Reported"
	DriftCorrectionFailed DriftAction = "CorrectionFailed"
	// DriftCorrectionPending: written and accepted, not yet confirmed by a read.
	DriftCorrectionPending DriftAction = "CorrectionPending"
)

// DriftRecord is one transition of a product, offer type or tenant setting
// away from the value the controller had converged it to (or last observed).
// +kubebuilder:validation:XValidation:rule="has(self.productID) != has(self.setting)",message="a drift record names exactly one of productID or setting"
type DriftRecord struct {
	// productID of the product (or offer type) that drifted; empty for a
	// tenant setting.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ProductID string `json:"productID,omitempty"`
	// setting is the tenant setting that drifted (as spec.tenantSettings
	// names it); empty for a product.
	// +optional
	Setting TenantSettingName `json:"setting,omitempty"`
	// expected is the value the product had before the drift.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Expected string `json:"expected"`
	// found is the value found instead.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Found string `json:"found"`
	// detectedAt is when the controller saw it.
	// +required
	DetectedAt metav1.Time `json:"detectedAt"`
	// action is what the controller did.
	// +required
	Action DriftAction `json:"action"`
}

// Counters are lifetime counts; they never go back.
type Counters struct {
	// driftDetected counts drift transitions ever seen.
	// +optional
	DriftDetected int64 `json:"driftDetected,omitempty"`
	// driftCorrected counts drifts the controller corrected.
	// +optional
	DriftCorrected int64 `json:"driftCorrected,omitempty"`
	// newProducts counts products Microsoft added after adoption.
	// +optional
	NewProducts int64 `json:"newProducts,omitempty"`
	// takeovers counts self-service subscriptions taken over by the organisation.
	// +optional
	Takeovers int64 `json:"takeovers,omitempty"`
	// cancellations counts self-service subscriptions cancelled.
	// +optional
	Cancellations int64 `json:"cancellations,omitempty"`
	// expiries counts self-service trials that ended.
	// +optional
	Expiries int64 `json:"expiries,omitempty"`
}

// Summary holds the scalar counts the print columns show.
type Summary struct {
	// ready mirrors the Ready condition's status for kubectl get.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Ready string `json:"ready,omitempty"`
	// managed is the number of products and tenant settings the policy
	// manages (not Unmanaged).
	// +optional
	// +kubebuilder:default=0
	Managed int32 `json:"managed"`
	// compliant is the number of managed products and tenant settings at
	// their desired value.
	// +optional
	// +kubebuilder:default=0
	Compliant int32 `json:"compliant"`
	// drifted is the number of managed products and tenant settings known
	// not to be at their desired value (a setting that could not be read
	// counts as neither compliant nor drifted).
	// +optional
	// +kubebuilder:default=0
	Drifted int32 `json:"drifted"`
	// unmanaged is the number of products left alone.
	// +optional
	// +kubebuilder:default=0
	Unmanaged int32 `json:"unmanaged"`
	// selfServiceSubscriptions is the number of active self-service subscriptions.
	// +optional
	// +kubebuilder:default=0
	SelfServiceSubscriptions int32 `json:"selfServiceSubscriptions"`
	// productsDropped is the number of products the tenant reported that
	// status.products cannot hold (beyond 256, or with an ID longer than 64
	// characters). They are still enforced, but not recorded: no adoption
	// value, no drift record.
	// +optional
	ProductsDropped int32 `json:"productsDropped,omitempty"`
}

// SelfServiceSubscription is a subscription a user bought on their own.
type SelfServiceSubscription struct {
	// id of the directory subscription.
	// +required
	// +kubebuilder:validation:MaxLength=64
	ID string `json:"id"`
	// skuPartNumber, e.g. Microsoft_365_Copilot.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	SkuPartNumber string `json:"skuPartNumber,omitempty"`
	// skuID of the subscription.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SkuID string `json:"skuID,omitempty"`
	// buyerID is the object ID of the user who bought it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BuyerID string `json:"buyerID,omitempty"`
	// seats is the number of licences bought.
	// +optional
	Seats int32 `json:"seats,omitempty"`
	// trial is true for a trial, false for a paid subscription.
	// +optional
	Trial bool `json:"trial,omitempty"`
	// status is Microsoft's status: Enabled, Warning, Suspended, Deleted,
	// LockedOut. Warning and Suspended subscriptions still serve their users
	// (an unpaid one, or a cancelled one on its way to Deleted). Deleted is
	// also shown once Graph answers 404 for it.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Status string `json:"status,omitempty"`
	// created is when it was bought.
	// +optional
	Created *metav1.Time `json:"created,omitempty"`
	// lastRenewal is when it last renewed, if it has.
	// +optional
	LastRenewal *metav1.Time `json:"lastRenewal,omitempty"`
	// fullRefundUntil is spec.subscriptions.fullRefundWindow (24 hours by
	// default) after the purchase or latest renewal.
	// +optional
	FullRefundUntil *metav1.Time `json:"fullRefundUntil,omitempty"`
	// proratedRefundUntil is spec.subscriptions.proratedRefundWindow (7 days
	// by default) after the purchase or latest renewal.
	// +optional
	ProratedRefundUntil *metav1.Time `json:"proratedRefundUntil,omitempty"`
	// assignedUsers is the number of users holding a seat of it; a takeover
	// moves each onto an organisation seat.
	// +optional
	AssignedUsers int32 `json:"assignedUsers,omitempty"`
	// freeOrgSeats is the number of unused seats of the same SKU the
	// organisation holds, not counting self-service seats.
	// +optional
	FreeOrgSeats int32 `json:"freeOrgSeats,omitempty"`
	// orgSeatsInUse is the number of the organisation's seats of the same SKU
	// in use when it was last read; a takeover moves the users onto them, so
	// it rises.
	// +optional
	OrgSeatsInUse int32 `json:"orgSeatsInUse,omitempty"`
	// takeoverPossible is true when freeOrgSeats covers assignedUsers, so an
	// admin can take it over by moving its users.
	// +optional
	TakeoverPossible bool `json:"takeoverPossible,omitempty"`
	// handover is set once the subscription left the buyer's hands (the
	// handovers record says when and why): TakenOver, Cancelled or Expired.
	// Such an entry is no longer counted as active, and never recorded again.
	// +optional
	Handover HandoverVerdict `json:"handover,omitempty"`
	// refundWarned is true once the RefundWindowClosing Event was sent for the
	// current window.
	// +optional
	RefundWarned bool `json:"refundWarned,omitempty"`
}

// HandoverVerdict says how a self-service subscription left the buyer's hands.
// +kubebuilder:validation:Enum=TakenOver;Cancelled;Expired
type HandoverVerdict string

const (
	VerdictTakenOver HandoverVerdict = "TakenOver"
	VerdictCancelled HandoverVerdict = "Cancelled"
	VerdictExpired   HandoverVerdict = "Expired"
)

// HandoverRecord is one self-service subscription that left the buyer's
// hands: taken over by the organisation, cancelled, or a trial that ended.
type HandoverRecord struct {
	// subscriptionID of the self-service subscription.
	// +required
	// +kubebuilder:validation:MaxLength=64
	SubscriptionID string `json:"subscriptionID"`
	// skuPartNumber of the subscription.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	SkuPartNumber string `json:"skuPartNumber,omitempty"`
	// buyerID is the user who had bought it.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	BuyerID string `json:"buyerID,omitempty"`
	// verdict is TakenOver, Cancelled or Expired.
	// +required
	Verdict HandoverVerdict `json:"verdict"`
	// detectedAt is when the controller noticed.
	// +required
	DetectedAt metav1.Time `json:"detectedAt"`
	// evidence says what led to the verdict.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Evidence string `json:"evidence,omitempty"`
}

// SubscriptionsStatus is what tracking found in the tenant.
type SubscriptionsStatus struct {
	// selfService lists self-service subscriptions, active ones first, at
	// most 50; total gives the full count.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=50
	SelfService []SelfServiceSubscription `json:"selfService,omitempty"`
	// total is the number of self-service subscriptions found.
	// +optional
	Total int32 `json:"total,omitempty"`
	// handovers is the newest takeovers, cancellations and expiries, at most 20.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	Handovers []HandoverRecord `json:"handovers,omitempty"`
	// lastSyncTime is when subscriptions were last read.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
}

// The status lists, conditions included, are atomic: only the controller
// writes status, always whole (its merge patch replaces a list), and on
// every write an atomic list costs the API server a fraction of a keyed one:
// no managed-fields entry and no ratcheting correlation per item
// (hack/bench/results). The controller keeps condition types unique
// (meta.SetStatusCondition).

// TenantPurchasePolicyStatus is the observed state; it answers without logs.
type TenantPurchasePolicyStatus struct {
	// observedGeneration is the spec generation the status describes; -1
	// until the controller has looked at the policy.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration"`

	// conditions: Ready, Reconciling and Stalled (kstatus), Drifted, Conflict,
	// SubscriptionTrackingDegraded and TenantSettingsDegraded; one of each
	// type at most.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastSyncTime is when the controller last read the tenant successfully.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastHandledReconcileAt is the last value of the
	// reconcile.tenantpolicy.io/requestedAt annotation the controller acted on.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// authenticatedAt is when this policy first authenticated to the tenant;
	// only authenticated policies can own a tenant.
	// +optional
	AuthenticatedAt *metav1.Time `json:"authenticatedAt,omitempty"`

	// adoptedAt is when this policy adopted the tenant: the sync that first
	// recorded its products and their adoption values.
	// +optional
	AdoptedAt *metav1.Time `json:"adoptedAt,omitempty"`

	// certificateNotAfter is the expiry of the client certificate, for
	// certificate auth.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`

	// summary holds the counts shown by kubectl get.
	// +optional
	// +kubebuilder:default={}
	Summary Summary `json:"summary,omitempty"`

	// products is the state of every product the tenant reports, at most 256.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Products []ProductStatus `json:"products,omitempty"`

	// tenantSettings is the state of every managed tenant-wide acquisition
	// setting (the spec.tenantSettings fields that are not Unmanaged).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=4
	TenantSettings []TenantSettingStatus `json:"tenantSettings,omitempty"`

	// offerTypes is the state of the offer types the policy has rules for.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	OfferTypes []ProductStatus `json:"offerTypes,omitempty"`

	// driftHistory is the newest drift transitions, at most 20; counters keep
	// the lifetime totals.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	DriftHistory []DriftRecord `json:"driftHistory,omitempty"`

	// counters are lifetime totals that never reset.
	// +optional
	Counters Counters `json:"counters,omitempty"`

	// subscriptions is what subscription tracking found.
	// +optional
	Subscriptions *SubscriptionsStatus `json:"subscriptions,omitempty"`

	// restoreAttempts counts deletion attempts with deletionPolicy Restore
	// that failed for a reason retrying cannot fix (credentials missing or
	// refused, a permission missing, the tenant gone or without products);
	// at 3 the finalizer is released without restoring (Event
	// RestoreSkipped).
	// +optional
	RestoreAttempts int32 `json:"restoreAttempts,omitempty"`

	// listAnomalies counts what the last sync's Microsoft lists held that
	// the controller did not take as answered: duplicate items (the first
	// kept), items dropped as unusable (null, wrong shape, no ID or an ID
	// longer than 64 characters) and items with a text field cut to fit.
	// Absent when the lists were clean. A change is announced with a
	// Warning Event ListAnomalies.
	// +optional
	ListAnomalies *ListAnomalies `json:"listAnomalies,omitempty"`
}

// ListAnomalies counts, per Microsoft list of the last sync, what its answer
// held beyond the items the controller used.
type ListAnomalies struct {
	// products is the licensing API's product and offer-type lists.
	// +optional
	Products *ListCounts `json:"products,omitempty"`
	// subscriptions is Graph's directory subscriptions and subscribed SKUs
	// (kept from an earlier sync when tracking could not read them).
	// +optional
	Subscriptions *ListCounts `json:"subscriptions,omitempty"`
}

// ListCounts is what one list answer held beyond the items used.
type ListCounts struct {
	// duplicates is the number of items dropped because an earlier item of
	// the same answer (any page) had the same ID.
	// +optional
	Duplicates int32 `json:"duplicates,omitempty"`
	// invalid is the number of items dropped as unusable: null, not of the
	// expected shape, without an ID or with one longer than 64 characters.
	// +optional
	Invalid int32 `json:"invalid,omitempty"`
	// truncated is the number of items kept with a text field cut to its
	// bound (ending in …) or an over-long secondary ID cleared.
	// +optional
	Truncated int32 `json:"truncated,omitempty"`
}

// TenantPurchasePolicy declares the self-service purchase policy of one
// Microsoft 365 tenant; the controller keeps the tenant matching it and
// reports drift, self-service purchases and takeovers in status.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tpp,categories=m365
// +kubebuilder:selectablefield:JSONPath=`.spec.tenantID`
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenantID`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.summary.ready`
// +kubebuilder:printcolumn:name="Drifted",type=integer,JSONPath=`.status.summary.drifted`
// +kubebuilder:printcolumn:name="Managed",type=integer,JSONPath=`.status.summary.managed`
// +kubebuilder:printcolumn:name="Self-Service",type=integer,JSONPath=`.status.summary.selfServiceSubscriptions`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TenantPurchasePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired self-service purchase state of the tenant.
	// +required
	Spec TenantPurchasePolicySpec `json:"spec"`

	// status is what the controller observed and did.
	// +optional
	// +default={"observedGeneration": -1}
	Status TenantPurchasePolicyStatus `json:"status,omitempty"`
}

// TenantPurchasePolicyList is a list of TenantPurchasePolicy.
// +kubebuilder:object:root=true
type TenantPurchasePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TenantPurchasePolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TenantPurchasePolicy{}, &TenantPurchasePolicyList{})
}
