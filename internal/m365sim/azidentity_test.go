package m365sim

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// TestAzidentityCompatibility proves the token endpoint speaks what
// azidentity (MSAL) sends: OIDC discovery, extra OIDC scopes, PS256
// certificate assertions with x5t#S256, signed with the wall clock.
func TestAzidentityCompatibility(t *testing.T) {
	f := newFixture(t, nil)
	certPEM, cert, key := selfSignedCert(t)
	if err := f.sim.RegisterApp(f.tenant, App{ClientID: "cert-app", CertificatePEM: certPEM, Permissions: AllPermissions}); err != nil {
		t.Fatal(err)
	}
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: f.sim.Endpoints().AuthorityHost + "/"}, Transport: f.client}
	secretCred := func(secret string) azcore.TokenCredential {
		c, err := azidentity.NewClientSecretCredential(f.tenant, testClient, secret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	certCred, err := azidentity.NewClientCertificateCredential(f.tenant, "cert-app", []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		cred    azcore.TokenCredential
		scope   string
		wantErr bool
	}{
		"secret":       {secretCred(testSecret), ResourceLicensing + "/.default", false},
		"wrong secret": {secretCred("wrong"), ResourceLicensing + "/.default", true},
		"certificate":  {certCred, ResourceGraph + "/.default", false},
	}
	for name, tc := range cases {
		_, err := tc.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{tc.scope}})
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", name, err, tc.wantErr)
		}
	}
}
