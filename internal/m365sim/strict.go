package m365sim

import (
	"net/http"
	"slices"
	"strings"
)

// Where Microsoft is documented to refuse a request, the simulator refuses
// it too, so a client cannot come to rely on a friendlier double.

// graphQueryRule is what one Graph route accepts in its query.
type graphQueryRule struct {
	entity string   // OData type name in error messages
	props  []string // properties $select may name
	// onlySelect: the route supports $select and nothing else (subscribedSkus:
	// "supports only the $select OData query parameter... does not support
	// $filter").
	onlySelect bool
}

var (
	companySubscriptionProps = []string{"id", "commerceSubscriptionId", "createdDateTime", "isTrial", "nextLifecycleDateTime",
		"ownerId", "ownerTenantId", "ownerType", "serviceStatus", "skuId", "skuPartNumber", "status", "totalLicenses"}
	subscribedSkuProps = []string{"id", "accountId", "accountName", "appliesTo", "capabilityStatus", "consumedUnits",
		"prepaidUnits", "servicePlans", "skuId", "skuPartNumber", "subscriptionIds"}
	// userProps are the v1.0 user properties (Microsoft Graph user resource).
	userProps = []string{"aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans", "authorizationInfo",
		"birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor", "country", "createdDateTime",
		"creationType", "customSecurityAttributes", "deletedDateTime", "department", "displayName", "employeeHireDate",
		"employeeLeaveDateTime", "employeeId", "employeeOrgData", "employeeType", "externalUserState",
		"externalUserStateChangeDateTime", "faxNumber", "givenName", "hireDate", "id", "identities", "imAddresses",
		"interests", "isManagementRestricted", "isResourceAccount", "jobTitle", "lastPasswordChangeDateTime",
		"legalAgeGroupClassification", "licenseAssignmentStates", "mail", "mailboxSettings", "mailNickname", "mobilePhone",
		"mySite", "officeLocation", "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes",
		"onPremisesImmutableId", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors", "onPremisesSamAccountName",
		"onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "onPremisesUserPrincipalName", "otherMails",
		"passwordPolicies", "passwordProfile", "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage",
		"preferredName", "provisionedPlans", "proxyAddresses", "responsibilities", "schools", "securityIdentifier",
		"serviceProvisioningErrors", "showInAddressList", "signInActivity", "signInSessionsValidFromDateTime", "skills",
		"state", "streetAddress", "surname", "usageLocation", "userPrincipalName", "userType"}
)

// graphQueryRules are keyed by route name (see RequestLog).
var graphQueryRules = map[string]graphQueryRule{
	"subscriptions":  {entity: "microsoft.graph.companySubscription", props: companySubscriptionProps},
	"subscription":   {entity: "microsoft.graph.companySubscription", props: companySubscriptionProps},
	"subscribedSkus": {entity: "microsoft.graph.subscribedSku", props: subscribedSkuProps, onlySelect: true},
	"user":           {entity: "microsoft.graph.user", props: userProps},
	"users-list":     {entity: "microsoft.graph.user", props: userProps},
}

// strictGraph refuses Graph queries Microsoft refuses: a query option a
// route does not support (400 Request_UnsupportedQuery; INFERRED code) and a
// $select of a property the type does not have (400 Request_BadRequest).
func (s *Server) strictGraph(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule, ok := graphQueryRules[routeName(EndpointGraph, r.URL.Path)]
		if !ok || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		if code, msg := rule.check(r); code != "" {
			styleOf(EndpointGraph).write(w, http.StatusBadRequest, code, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns the error code and message for a refused query ("" = fine).
func (rule graphQueryRule) check(r *http.Request) (string, string) {
	q := r.URL.Query()
	if rule.onlySelect {
		for k := range q {
			if strings.HasPrefix(k, "$") && k != "$select" && k != "$skiptoken" { // $skiptoken: our own nextLink
				return "Request_UnsupportedQuery", "The query option '" + clip(k) + "' is not supported on this resource; it supports only $select."
			}
		}
	}
	for _, f := range selectFields(r) {
		if !slices.ContainsFunc(rule.props, func(p string) bool { return strings.EqualFold(p, f) }) {
			return "Request_BadRequest", "Could not find a property named '" + clip(f) + "' on type '" + rule.entity + "'."
		}
	}
	return "", ""
}

// refuseV1Parameters refuses what only the v1 token endpoint accepts: the v2
// endpoint takes scope, never resource (AADSTS901002).
func refuseV1Parameters(r *http.Request) *entraError {
	if r.PostForm.Has("resource") {
		return entraErr(http.StatusBadRequest, "invalid_request", 901002, "The 'resource' request parameter is not supported.")
	}
	return nil
}
