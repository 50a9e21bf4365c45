package testsupport

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"k8s.io/client-go/rest"
)

// ServiceAccountIssuer reads the API server's service-account issuer and its
// JWKS, as a cloud identity provider would from the OIDC discovery documents.
func ServiceAccountIssuer(cfg *rest.Config) (issuer string, jwks []byte, err error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return "", nil, err
	}
	get := func(path string) ([]byte, error) {
		resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + path)
		if err != nil {
			return nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return b, err
	}
	b, err := get("/.well-known/openid-configuration")
	if err != nil {
		return "", nil, err
	}
	var disco struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(b, &disco); err != nil || disco.Issuer == "" {
		return "", nil, fmt.Errorf("API server discovery: issuer %q: %v", disco.Issuer, err)
	}
	jwks, err = get("/openid/v1/jwks")
	return disco.Issuer, jwks, err
}
