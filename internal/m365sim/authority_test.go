package m365sim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

// selfSignedCert returns a certificate PEM and its key.
func selfSignedCert(t *testing.T) ([]byte, *x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert, key
}

// certAssertion builds the assertion azidentity's certificate credential sends.
func certAssertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, clientID, aud string, now time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodPS256, jwt.MapClaims{
		"aud": aud, "iss": clientID, "sub": clientID, "jti": "1",
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	sum := sha256.Sum256(cert.Raw)
	tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// federatedAssertion builds a workload identity token signed by key (kid "k1").
func federatedAssertion(t *testing.T, key *rsa.PrivateKey, iss, sub, aud string, now time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": iss, "sub": sub, "aud": []string{aud},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwksOf(key *rsa.PrivateKey) []byte {
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	return b
}

func TestTokenGrants(t *testing.T) {
	f := newFixture(t, nil)
	now := f.clock.Now()
	certPEM, cert, certKey := selfSignedCert(t)
	_, _, otherKey := selfSignedCert(t)
	const certApp, fedApp = "cert-app", "fed-app"
	const issuer, subject = "https://kubernetes.default.svc", "system:serviceaccount:m365:contoso"
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: certApp, CertificatePEM: certPEM, Permissions: []string{PermPolicyRead}}); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: fedApp, Federated: &FederatedCredential{Issuer: issuer, Subject: subject, JWKS: jwksOf(certKey)},
		Permissions: []string{PermPolicyReadWrite}}); err != nil {
		t.Fatal(err)
	}
	tokenURL := f.sim.Endpoints().AuthorityHost + "/" + f.tenant + "/oauth2/v2.0/token"
	licScope := ResourceLicensing + "/.default"
	assertion := func(clientID, a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {licScope},
			"client_assertion_type": {assertionTypeJWTBearer}, "client_assertion": {a}}
	}
	secret := func(s, scope string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {testClient}, "client_secret": {s}, "scope": {scope}}
	}
	type want struct {
		Status int
		Error  string
		Code   float64
		Roles  []string
	}
	cases := map[string]struct {
		reason string
		form   url.Values
		want   want
	}{
		"secret ok": {"the registered secret gets a licensing token with the licensing roles only",
			secret(testSecret, licScope), want{Status: 200, Roles: []string{PermPolicyRead, PermPolicyReadWrite}}},
		"graph scope": {"a Graph token carries the Graph roles",
			secret(testSecret, "https://graph.microsoft.com/.default"), want{Status: 200, Roles: []string{PermOrganizationRead, PermUserRead,
				PermPolicyReadAll, PermPolicyReadWriteAuthorization, PermAppsAndServicesRead, PermAppsAndServicesReadWrite, PermDelegatedAdminRelationshipRead}}},
		"wrong secret": {"Entra answers 401 invalid_client AADSTS7000215",
			secret("nope", licScope), want{Status: 401, Error: "invalid_client", Code: 7000215}},
		"unknown app": {"an app not registered in the tenant is unauthorized_client",
			url.Values{"grant_type": {"client_credentials"}, "client_id": {"ghost"}, "client_secret": {"x"}, "scope": {licScope}},
			want{Status: 400, Error: "unauthorized_client", Code: 700016}},
		"bad scope": {"scope must be <resource>/.default",
			secret(testSecret, ResourceLicensing), want{Status: 400, Error: "invalid_request", Code: 70011}},
		"unknown resource": {"an unknown resource is refused",
			secret(testSecret, "https://example.com/.default"), want{Status: 400, Error: "invalid_request", Code: 500011}},
		"cert ok": {"a certificate assertion signed by the registered cert's key is accepted",
			assertion(certApp, certAssertion(t, cert, certKey, certApp, tokenURL, now)), want{Status: 200, Roles: []string{PermPolicyRead}}},
		"cert bad signature": {"an assertion signed by another key fails signature validation",
			assertion(certApp, certAssertion(t, cert, otherKey, certApp, tokenURL, now)), want{Status: 401, Error: "invalid_client", Code: 700027}},
		"cert wrong audience": {"the assertion's aud must be the token endpoint",
			assertion(certApp, certAssertion(t, cert, certKey, certApp, "https://login.example/token", now)), want{Status: 400, Error: "invalid_request", Code: 50027}},
		"cert expired": {"an assertion past its exp is refused",
			assertion(certApp, certAssertion(t, cert, certKey, certApp, tokenURL, now.Add(-time.Hour))), want{Status: 401, Error: "invalid_client", Code: 700024}},
		"federated ok": {"a workload identity token matching the federated credential is accepted",
			assertion(fedApp, federatedAssertion(t, certKey, issuer, subject, DefaultFederatedAudience, now)), want{Status: 200, Roles: []string{PermPolicyReadWrite}}},
		"federated wrong audience": {"the audience must be api://AzureADTokenExchange",
			assertion(fedApp, federatedAssertion(t, certKey, issuer, subject, "api://other", now)), want{Status: 400, Error: "invalid_request", Code: 700212}},
		"federated wrong issuer": {"an issuer without a federated credential is refused",
			assertion(fedApp, federatedAssertion(t, certKey, "https://evil.example", subject, DefaultFederatedAudience, now)), want{Status: 400, Error: "invalid_request", Code: 700211}},
		"federated wrong subject": {"another service account is refused",
			assertion(fedApp, federatedAssertion(t, certKey, issuer, "system:serviceaccount:x:y", DefaultFederatedAudience, now)), want{Status: 400, Error: "invalid_request", Code: 700213}},
		"federated bad signature": {"a token not signed by the issuer's keys is refused",
			assertion(fedApp, federatedAssertion(t, otherKey, issuer, subject, DefaultFederatedAudience, now)), want{Status: 401, Error: "invalid_client", Code: 700027}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := f.tokenRequest(t, f.tenant, tc.form)
			m := r.json(t)
			got := want{Status: r.status}
			if e, ok := m["error"].(string); ok {
				got.Error = e
				got.Code = m["error_codes"].([]any)[0].(float64)
			}
			if tok, ok := m["access_token"].(string); ok {
				got.Roles = claimsOf(t, tok).Roles
				if m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) {
					t.Errorf("token answer %v", m)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.reason, diff)
			}
			for _, k := range []string{"client_secret", "client_assertion"} {
				if v := tc.form.Get(k); v != "" && strings.Contains(string(r.body), v) {
					t.Errorf("answer echoes %s: %s", k, r.body)
				}
			}
		})
	}
}

func claimsOf(t *testing.T, tok string) *accessClaims {
	t.Helper()
	var c accessClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestRefreshTokenRotation(t *testing.T) {
	f := newFixture(t, nil)
	rt, err := f.sim.RegisterDelegatedUser(f.tenant, "partner-app", []string{RoleBillingAdmin})
	if err != nil {
		t.Fatal(err)
	}
	redeem := func(token string) response {
		return f.tokenRequest(t, f.tenant, url.Values{"grant_type": {"refresh_token"}, "client_id": {"partner-app"},
			"refresh_token": {token}, "scope": {ResourceLicensing + "/.default offline_access openid profile"}})
	}
	first := redeem(rt)
	if first.status != http.StatusOK {
		t.Fatalf("first redeem: %d %s", first.status, first.body)
	}
	m := first.json(t)
	next, _ := m["refresh_token"].(string)
	if next == "" || next == rt {
		t.Fatalf("want a new refresh token, got %q", next)
	}
	c := claimsOf(t, m["access_token"].(string))
	if !c.delegated() || !c.hasDirectoryRole(RoleBillingAdmin) || c.TenantID != f.tenant {
		t.Errorf("delegated claims wrong: %+v", c)
	}
	if old := redeem(rt); old.status != http.StatusBadRequest || old.json(t)["error"] != "invalid_grant" {
		t.Errorf("old refresh token: want 400 invalid_grant, got %d %s", old.status, old.body)
	}
	if again := redeem(next); again.status != http.StatusOK {
		t.Errorf("rotated refresh token: want 200, got %d %s", again.status, again.body)
	}
}

func TestOpenIDConfigurationAndKeys(t *testing.T) {
	f := newFixture(t, nil)
	auth := f.sim.Endpoints().AuthorityHost
	r := f.do(t, "GET", auth+"/"+f.tenant+"/v2.0/.well-known/openid-configuration", "", nil, nil)
	m := r.json(t)
	want := map[string]any{
		"token_endpoint": auth + "/" + f.tenant + "/oauth2/v2.0/token",
		"issuer":         auth + "/" + f.tenant + "/v2.0",
		"jwks_uri":       auth + "/" + f.tenant + "/discovery/v2.0/keys",
	}
	got := map[string]any{"token_endpoint": m["token_endpoint"], "issuer": m["issuer"], "jwks_uri": m["jwks_uri"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("openid configuration (-want +got):\n%s", diff)
	}
	keys := f.do(t, "GET", m["jwks_uri"].(string), "", nil, nil).json(t)["keys"].([]any)
	if len(keys) != 1 || keys[0].(map[string]any)["kty"] != "RSA" {
		t.Errorf("keys: %v", keys)
	}
	if bad := f.do(t, "GET", auth+"/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration", "", nil, nil); bad.status != 400 {
		t.Errorf("unknown tenant: want 400, got %d", bad.status)
	}
}
