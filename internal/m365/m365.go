// Package m365 holds what every Microsoft 365 client of the controller shares:
// the endpoints and token scopes, the typed errors the reconciler acts on, and
// the not-before gate that keeps requests away from a throttled host. It
// decides the request pipeline under every client (no redirects, answers
// capped, the gate), how Retry-After is read and clamped, what an error may
// copy from an answer, and the bounds of decoded lists. It must not import
// Kubernetes code, retry a request on its own, or follow a redirect.
package m365

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Token scopes. They never derive from the endpoints: a controller pointed at
// the simulator asks for exactly the scopes it would ask Microsoft for.
const (
	// LicensingScope is the "M365 License Manager" resource that serves the
	// self-service purchase policy API.
	LicensingScope = "aeb86249-8ea3-49e2-900b-54cc8e308f85/.default"
	// GraphScope is Microsoft Graph.
	GraphScope = "https://graph.microsoft.com/.default"
)

// Microsoft's public cloud, the default for every endpoint.
const (
	PublicAuthorityHost = "https://login.microsoftonline.com"
	PublicLicensing     = "https://licensing.m365.microsoft.com"
	PublicGraph         = "https://graph.microsoft.com"
)

// DefaultCallTimeout bounds one HTTP call to Microsoft.
const DefaultCallTimeout = 30 * time.Second

// Endpoints are the origins (scheme://host[:port], no path) of the services
// the controller talks to. Clients append /v1.0/... themselves.
type Endpoints struct {
	AuthorityHost string
	Licensing     string
	Graph         string
}

// PublicCloud returns Microsoft's public cloud endpoints.
func PublicCloud() Endpoints {
	return Endpoints{AuthorityHost: PublicAuthorityHost, Licensing: PublicLicensing, Graph: PublicGraph}
}

// Validate checks that every endpoint is an https origin.
func (e Endpoints) Validate() error {
	for name, v := range map[string]string{"authority-host": e.AuthorityHost, "licensing-endpoint": e.Licensing, "graph-endpoint": e.Graph} {
		if err := ValidateOrigin(v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// ValidateOrigin accepts https://host[:port] with an optional trailing slash.
func ValidateOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", origin, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q must be an https origin such as https://host[:port]", origin)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must be an origin only, without path, query or credentials", origin)
	}
	return nil
}

// SameOrigin reports whether u is on origin: the same scheme, the same host
// in any case and the same port (a missing one is the scheme's default),
// and no user info. Requests that carry a token or a credential go only
// where SameOrigin holds.
func SameOrigin(origin, u *url.URL) bool {
	return u.User == nil && strings.EqualFold(origin.Scheme, u.Scheme) &&
		strings.EqualFold(origin.Hostname(), u.Hostname()) && portOf(origin) == portOf(u)
}

// portOf is u's port, or its scheme's default when it names none.
func portOf(u *url.URL) string {
	if port := u.Port(); port != "" {
		return port
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// NewHTTPClient returns an HTTP client whose trust store is the system pool
// plus, when caFile is not empty, the PEM certificates in caFile. It never
// follows a redirect (NoRedirects); the clients build their per-tenant
// pipeline on its transport (TenantClient).
func NewHTTPClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t, CheckRedirect: NoRedirects}, nil
}
