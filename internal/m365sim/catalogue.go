package m365sim

import (
	"time"

	"github.com/google/uuid"
)

// Policy values of the licensing API.
const (
	PolicyEnabled    = "Enabled"
	PolicyDisabled   = "Disabled"
	PolicyTrialsOnly = "OnlyTrialsWithoutPaymentMethod"
)

// PolicyID is the only policy the licensing API serves.
const PolicyID = "AllowSelfServicePurchase"

// OfferTypes are the third-party offer types of the licensing API.
var OfferTypes = []string{"SaaS", "POWERBIVISUALS", "DYNAMICSCE", "DYNAMICSBC"}

// validPolicyValue reports whether v is a value the licensing API accepts.
func validPolicyValue(v string) bool {
	return v == PolicyEnabled || v == PolicyDisabled || v == PolicyTrialsOnly
}

// Product is a self-service purchasable product of the licensing API.
type Product struct {
	ID          string `json:"productId"`
	Name        string `json:"productName"`
	PolicyValue string `json:"policyValue,omitempty"`
	// ReplicationLag (AddProduct only): for this long after Microsoft added
	// the product, a PUT to it answers 404 although lists show it.
	ReplicationLag time.Duration `json:"replicationLag,omitempty"`
}

// DefaultProducts is the product catalogue of Microsoft Learn's MSCommerce
// page (October 2024; docs/microsoft-api.md, "Licensing"). Every tenant starts with these, all Enabled, unless its
// TenantConfig lists products.
func DefaultProducts() []Product {
	return []Product{
		{ID: "CFQ7TTC0MM8R", Name: "Microsoft 365 Copilot"},
		{ID: "CFQ7TTC0N8SS", Name: "Clipchamp Premium"},
		{ID: "CFQ7TTC0LH05", Name: "Microsoft 365 F3"},
		{ID: "CFQ7TTC0N8SL", Name: "Microsoft Purview Discovery"},
		{ID: "CFQ7TTC0LH2H", Name: "Power Apps per user"},
		{ID: "CFQ7TTC0LH3L", Name: "Power Automate per user"},
		{ID: "CFQ7TTC0LSGZ", Name: "Power Automate RPA"},
		{ID: "CFQ7TTC0H6RP", Name: "Power BI Premium (standalone)"},
		{ID: "CFQ7TTC0H9MP", Name: "Power BI Pro"},
		{ID: "CFQ7TTC0HDB1", Name: "Planner Plan 1"},
		{ID: "CFQ7TTC0HDB0", Name: "Project Plan 3"},
		{ID: "CFQ7TTC0S3X1", Name: "Python in Excel"},
		{ID: "CFQ7TTC0J1FV", Name: "Teams Exploratory"},
		{ID: "CFQ7TTC0RM8K", Name: "Teams Premium Introductory Pricing"},
		{ID: "CFQ7TTC0HD33", Name: "Visio Plan 1"},
		{ID: "CFQ7TTC0HD32", Name: "Visio Plan 2"},
		{ID: "CFQ7TTC0PW0V", Name: "Viva Goals"},
		{ID: "CFQ7TTC0HHS9", Name: "Windows 365 Enterprise"},
		{ID: "CFQ7TTC0J203", Name: "Windows 365 Business"},
		{ID: "CFQ7TTC0HX99", Name: "Windows 365 Business with Hybrid Benefit"},
	}
}

// SKU is a licence SKU as Graph names it. ProductID links it to the licensing
// API's product (empty for SKUs that cannot be bought self-service).
type SKU struct {
	SkuID         string `json:"skuId"`
	SkuPartNumber string `json:"skuPartNumber"`
	DisplayName   string `json:"displayName"`
	ProductID     string `json:"productId,omitempty"`
}

// Common SKU part numbers.
const (
	SkuCopilot          = "Microsoft_365_Copilot"
	SkuBusinessPremium  = "SPB"
	SkuBusinessStandard = "O365_BUSINESS_PREMIUM"
	SkuBusinessBasic    = "O365_BUSINESS_ESSENTIALS"
	SkuPowerBIPro       = "POWER_BI_PRO"
)

// Catalogue is the SKU catalogue (real SKU IDs and part numbers).
var Catalogue = []SKU{
	{SkuID: "639dec6b-bb19-468b-871c-c5c441c4b0cb", SkuPartNumber: SkuCopilot, DisplayName: "Microsoft 365 Copilot", ProductID: "CFQ7TTC0MM8R"},
	{SkuID: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", SkuPartNumber: SkuBusinessPremium, DisplayName: "Microsoft 365 Business Premium"},
	{SkuID: "f245ecc8-75af-4f8e-b61f-27d8114de5f3", SkuPartNumber: SkuBusinessStandard, DisplayName: "Microsoft 365 Business Standard"},
	{SkuID: "3b555118-da6a-4418-894f-7df1e2096870", SkuPartNumber: SkuBusinessBasic, DisplayName: "Microsoft 365 Business Basic"},
	{SkuID: "f8a1db68-be16-40ed-86d5-cb42ce701560", SkuPartNumber: SkuPowerBIPro, DisplayName: "Power BI Pro", ProductID: "CFQ7TTC0H9MP"},
	{SkuID: "4b244418-9658-4451-a2b8-b5e2b364e9bd", SkuPartNumber: "VISIOONLINE_PLAN1", DisplayName: "Visio Plan 1", ProductID: "CFQ7TTC0HD33"},
	{SkuID: "c5928f49-12ba-48f7-ada3-0d743a3601d5", SkuPartNumber: "VISIOCLIENT", DisplayName: "Visio Plan 2", ProductID: "CFQ7TTC0HD32"},
	{SkuID: "53818b1b-4a27-454b-8896-0dba576410e6", SkuPartNumber: "PROJECTPROFESSIONAL", DisplayName: "Project Plan 3", ProductID: "CFQ7TTC0HDB0"},
	{SkuID: "b30411f5-fea1-4a59-9ad9-3db7c7ead579", SkuPartNumber: "POWERAPPS_PER_USER", DisplayName: "Power Apps per user", ProductID: "CFQ7TTC0LH2H"},
	{SkuID: "bc946dac-7877-4271-b2f7-99d2db13cd2c", SkuPartNumber: "FLOW_PER_USER", DisplayName: "Power Automate per user", ProductID: "CFQ7TTC0LH3L"},
	{SkuID: "710779e8-3d4a-4c88-adb9-386c958d1fdf", SkuPartNumber: "TEAMS_EXPLORATORY", DisplayName: "Teams Exploratory", ProductID: "CFQ7TTC0J1FV"},
	{SkuID: "66b55226-6b4f-492c-910c-a3b7a3c9d993", SkuPartNumber: "SPE_F1", DisplayName: "Microsoft 365 F3", ProductID: "CFQ7TTC0LH05"},
}

// LookupSKU finds a catalogue SKU by part number (or SKU ID).
func LookupSKU(partNumberOrID string) (SKU, bool) {
	for _, k := range Catalogue {
		if k.SkuPartNumber == partNumberOrID || k.SkuID == partNumberOrID {
			return k, true
		}
	}
	return SKU{}, false
}

// ServicePlanInfo is one entry of companySubscription.serviceStatus.
type ServicePlanInfo struct {
	ServicePlanID      string `json:"servicePlanId"`
	ServicePlanName    string `json:"servicePlanName"`
	ProvisioningStatus string `json:"provisioningStatus"`
	AppliesTo          string `json:"appliesTo"`
}

// servicePlans returns the (single, simulated) service plan of a SKU; its ID
// is derived from the SKU ID so it is stable.
func servicePlans(k SKU) []ServicePlanInfo {
	id := uuid.NewSHA1(uuid.NameSpaceOID, []byte("m365sim/plan/"+k.SkuID)).String()
	return []ServicePlanInfo{{ServicePlanID: id, ServicePlanName: k.SkuPartNumber + "_CORE", ProvisioningStatus: "Success", AppliesTo: "User"}}
}
