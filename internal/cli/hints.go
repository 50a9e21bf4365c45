package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenantpolicy/purchase-policy-controller/internal/cli/manifest"
	"github.com/tenantpolicy/purchase-policy-controller/internal/clustercreds"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// What the command line says when something fails: one line per error, what
// happened and what to do. doctor uses the same hints for its steps.

// licensingAppID is the "M365 License Manager" resource of the licensing API.
const licensingAppID = "aeb86249-8ea3-49e2-900b-54cc8e308f85"

// usageErr is a wrong or missing flag.
type usageErr struct{ msg string }

func (e *usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &usageErr{msg: fmt.Sprintf(format, args...)}
}

// clusterError is a failure to read or write the cluster.
type clusterError struct {
	what string
	err  error
}

func (e *clusterError) Error() string { return e.what + ": " + e.err.Error() }
func (e *clusterError) Unwrap() error { return e.err }

// explain turns err into the lines printed after "error: ".
func explain(err error) string {
	var (
		usage   *usageErr
		cluster *clusterError
		invalid *auth.InvalidCredentialError
	)
	if ps, ok := manifest.AsProblems(err); ok {
		return ps.Error()
	}
	switch {
	case errors.As(err, &usage):
		return usage.msg + " (see --help)"
	case errors.As(err, &cluster):
		return explainCluster(cluster)
	case errors.As(err, &invalid):
		return invalid.Error() + ": fix the credential flags or the policy's spec.auth"
	}
	if e, ok := m365.AsError(err); ok {
		return explainMicrosoft(e, false)
	}
	return err.Error()
}

// explainCluster says what to do about a Kubernetes failure.
func explainCluster(e *clusterError) string {
	var miss *clustercreds.MissingError
	switch err := e.err; {
	case errors.As(err, &miss):
		return fmt.Sprintf("%s: %s: create it, or fix the policy's spec.auth", e.what, miss.Message)
	case clientcmd.IsEmptyConfig(err):
		return e.what + ": no kubeconfig found: set KUBECONFIG or pass --kubeconfig (or --server and --token)"
	case apierrors.IsNotFound(err):
		return e.what + ": not found in the cluster of the current context: check the name, --namespace and --context"
	case apierrors.IsForbidden(err):
		return fmt.Sprintf("%s: forbidden by the cluster's RBAC (%s): ask for the verbs it names, e.g. `kubectl auth can-i get secrets -n NAMESPACE`", e.what, apierrors.ReasonForError(err))
	case apierrors.IsUnauthorized(err):
		return e.what + ": the cluster refused your credentials: log in to the cluster again (kubectl config current-context)"
	}
	return fmt.Sprintf("%s: %v: check that the kubeconfig context reaches a running API server", e.what, e.err)
}

// explainMicrosoft says what an error from Microsoft means and what to do.
func explainMicrosoft(e *m365.Error, delegated bool) string {
	if e.Op == "get token" {
		if meaning, fix, ok := aadsts(e); ok {
			return fmt.Sprintf("Entra refused the token request: %s (%s): %s", meaning, e.Reason, fix)
		}
	}
	switch e.Kind {
	case m365.Forbidden:
		return fmt.Sprintf("%s: Microsoft answered 403 Forbidden: %s", e.Error(), permissionHint(e.Op, delegated))
	case m365.Unauthorized:
		return e.Error() + ": the credential was refused: run `kubectl tpp doctor` with the same flags"
	case m365.Throttled:
		return e.Error() + ": Microsoft is throttling this tenant: try again after the wait"
	case m365.Transient, m365.Redirected, m365.InvalidResponse:
		return e.Error() + ": Microsoft or the network failed for now: try again; check --licensing-endpoint, --graph-endpoint and --authority-host if it lasts"
	}
	return e.Error()
}

// aadstsCode finds "AADSTS<n>" at the start of an Entra reason.
var aadstsCode = regexp.MustCompile(`^AADSTS(\d+)`)

// aadstsHints are the codes people meet, what they mean and the fix.
var aadstsHints = map[string][2]string{
	"7000215": {"the client secret is wrong", "use the secret's Value (not its Secret ID), or create a new client secret under the app registration's Certificates & secrets"},
	"7000222": {"the client secret has expired", "create a new client secret under the app registration's Certificates & secrets"},
	"700016":  {"the application is not in this tenant", "check --client-id and --tenant; a multi-tenant app must first be consented in this tenant by an admin (https://login.microsoftonline.com/TENANT/adminconsent?client_id=APP)"},
	"90002":   {"the tenant does not exist", "check --tenant / spec.tenantID (the Directory ID on Entra's Overview page) and --authority-host (the cloud)"},
	"65001":   {"no one consented to the application's permissions", "an admin grants consent: Entra > App registrations > API permissions > Grant admin consent"},
	"500011": {"the licensing API's service principal (M365 License Manager, " + licensingAppID + ") is not in the tenant",
		"an admin creates it once: New-MgServicePrincipal -AppId " + licensingAppID + " (or az ad sp create --id " + licensingAppID + "), then grants the app its permission"},
	"700027":  {"the certificate assertion was refused", "upload this certificate (its public part) to the app registration's Certificates & secrets"},
	"700024":  {"the client assertion is expired or not yet valid", "check the clock of this machine"},
	"7000218": {"the application is not a public client", "use the default --client-id of login, or enable 'Allow public client flows' in the app registration"},
	"70000":   {"the grant was refused (a refresh token expired, revoked or already used)", "sign in again: kubectl tpp login --tenant TENANT --secret NAMESPACE/NAME"},
	"50076":   {"multi-factor authentication is required", "sign in again interactively: kubectl tpp login"},
	"53003":   {"Conditional Access blocked the sign-in", "ask the tenant's admin to exclude this app or sign-in from the policy"},
	"70019":   {"the sign-in code expired before it was entered", "run kubectl tpp login again and enter the code within its lifetime"},
}

func aadsts(e *m365.Error) (meaning, fix string, ok bool) {
	m := aadstsCode.FindStringSubmatch(e.Reason)
	if m == nil {
		return "", "", false
	}
	h, ok := aadstsHints[m[1]]
	return h[0], h[1], ok
}

// permissionHint names what a 403 of the call op needs, for an app and for a
// delegated admin (and a partner through GDAP).
func permissionHint(op string, delegated bool) string {
	switch {
	case strings.HasPrefix(op, "list products"), strings.HasPrefix(op, "list offer types"):
		return pick(delegated,
			"sign in as a Billing Administrator or Global Administrator (Global Reader can only read); partners: a GDAP relationship with the Billing Administrator role",
			"grant the app the application permission Policy.Read.AllowSelfServicePurchase (or .ReadWrite) of M365 License Manager ("+licensingAppID+") and admin-consent it")
	case strings.HasPrefix(op, "set "):
		return pick(delegated,
			"sign in as a Billing Administrator or Global Administrator (a Global Reader may not write); partners: a GDAP relationship with the Billing Administrator role",
			"grant the app the application permission Policy.ReadWrite.AllowSelfServicePurchase of M365 License Manager ("+licensingAppID+") and admin-consent it")
	}
	return pick(delegated,
		"sign in as a Global Reader or Global Administrator (partners: GDAP Global Reader)",
		"grant the app the Microsoft Graph application permission Organization.Read.All (and User.Read.All to recognise takeovers) and admin-consent it")
}

func pick(delegated bool, forUser, forApp string) string {
	if delegated {
		return forUser
	}
	return forApp
}
