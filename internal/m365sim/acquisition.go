package m365sim

import (
	"fmt"
	"slices"
)

// Acquisition paths of PurchaseRequest.Path: the ways Microsoft lets a user
// get a licence on their own. Only the self-service path obeys the product's
// self-service purchase policy; the other three are the side doors the
// tenant-wide settings close (docs/microsoft-api.md, "Served by the simulator").
const (
	// PathSelfService is a self-service purchase or trial (the default): the
	// product's policy decides.
	PathSelfService = "selfService"
	// PathOrganizationTrial is a trial started "on behalf of the
	// organisation": allowed while isAppAndServicesTrialEnabled is true, even
	// when the product's own policy is Disabled. Always a trial.
	PathOrganizationTrial = "organizationTrial"
	// PathEmailSignup is an email-based ("viral") sign-up: allowed while
	// allowedToSignUpEmailBasedSubscriptions is true; a buyer who is not yet
	// in the directory also needs allowEmailVerifiedUsersToJoinOrganization.
	// Always a trial.
	PathEmailSignup = "emailBasedSignup"
	// PathOfficeStore is an Office Store add-in acquisition: allowed while
	// isOfficeStoreEnabled is true.
	PathOfficeStore = "officeStore"
)

// acquisitionAccountLabels name the buyer's billing account per path.
var acquisitionAccountLabels = map[string]string{
	PathSelfService:       "self-service",
	PathOrganizationTrial: "trial on behalf of the organisation",
	PathEmailSignup:       "email-based sign-up",
	PathOfficeStore:       "Office Store",
}

// admitAcquisition decides whether a purchase request may go ahead on its
// path and returns it as it will be recorded (path defaulted, trial forced
// where the path only makes trials). Refusals wrap ErrPurchaseBlocked with a
// message that names the setting. t must be locked.
func (t *tenant) admitAcquisition(k SKU, p PurchaseRequest) (PurchaseRequest, error) {
	if p.Path == "" {
		p.Path = PathSelfService
	}
	if _, ok := acquisitionAccountLabels[p.Path]; !ok {
		return p, fmt.Errorf("%w: path %q (want selfService, organizationTrial, emailBasedSignup or officeStore)", ErrInvalid, p.Path)
	}
	if p.Path == PathOrganizationTrial || p.Path == PathEmailSignup {
		p.Trial = true
	}
	if p.IgnorePolicy {
		return p, nil
	}
	st := &t.settings
	switch p.Path {
	case PathOrganizationTrial:
		if !st.trials {
			return p, fmt.Errorf("%w: users may not start trials on behalf of the organisation (appsAndServices settings.isAppAndServicesTrialEnabled is false)", ErrPurchaseBlocked)
		}
	case PathEmailSignup:
		if !st.authz.AllowedToSignUpEmailBasedSubscriptions {
			return p, fmt.Errorf("%w: users may not sign up for email-based subscriptions (authorizationPolicy allowedToSignUpEmailBasedSubscriptions is false)", ErrPurchaseBlocked)
		}
		if !st.authz.AllowEmailVerifiedUsersToJoinOrganization && !t.hasBuyer(p) {
			return p, fmt.Errorf("%w: email-verified users may not join the organisation (authorizationPolicy allowEmailVerifiedUsersToJoinOrganization is false), and %s is not in the directory", ErrPurchaseBlocked, buyerName(p))
		}
	case PathOfficeStore:
		if !st.store {
			return p, fmt.Errorf("%w: users may not acquire Office Store add-ins (appsAndServices settings.isOfficeStoreEnabled is false)", ErrPurchaseBlocked)
		}
	default:
		return p, t.purchaseAllowed(k, p)
	}
	return p, nil
}

// hasBuyer reports whether the request names a user already in the directory.
func (t *tenant) hasBuyer(p PurchaseRequest) bool {
	return slices.ContainsFunc([]string{p.UserID, p.UserPrincipalName}, func(k string) bool { return k != "" && t.findUser(k) != nil })
}

func buyerName(p PurchaseRequest) string {
	if p.UserPrincipalName != "" {
		return p.UserPrincipalName
	}
	if p.UserID != "" {
		return p.UserID
	}
	return "the new user"
}
