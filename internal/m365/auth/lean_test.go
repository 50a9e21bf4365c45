package auth

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"golang.org/x/sync/errgroup"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

func TestRenewAt(t *testing.T) {
	exp := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		tok  azcore.AccessToken
		want time.Time
	}{
		"Entra's refresh_in when it gave one":  {azcore.AccessToken{ExpiresOn: exp, RefreshOn: exp.Add(-time.Hour)}, exp.Add(-time.Hour)},
		"MSAL's margin before expiry without":  {azcore.AccessToken{ExpiresOn: exp}, exp.Add(-tokenRenewal)},
		"a refresh time past expiry is no use": {azcore.AccessToken{ExpiresOn: exp, RefreshOn: exp.Add(time.Minute)}, exp.Add(-tokenRenewal)},
	}
	for name, tc := range cases {
		if got := renewAt(tc.tok); !got.Equal(tc.want) {
			t.Errorf("%s: renew at %v, want %v", name, got, tc.want)
		}
	}
}

// A credential keeps its tokens, not an azidentity client: Entra sees one
// token request per resource and lifetime, however many callers ask at once,
// and one more only when the token is due for renewal.
func TestTokenPerLifetime(t *testing.T) {
	s := newSim(t)
	s.register(t, m365sim.App{ClientID: testClient, Secret: testSecret, Permissions: readWrite})
	var clock atomic.Int64 // offset from the wall clock
	now := func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
	p, err := NewProvider(Options{AuthorityHost: s.sim.Endpoints().AuthorityHost, HTTPClient: s.sim.HTTPClient(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cred := mustCredential(t, p, secretMaterial(testSecret))
	tokens := func() int { return s.sim.Requests(s.tenant).Counts["authority POST token"] }

	var g errgroup.Group
	for range 8 {
		g.Go(func() error { _, err := cred.GetToken(context.Background(), licensingScope); return err })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(context.Background(), licensingScope); err != nil {
		t.Fatal(err)
	}
	if n := tokens(); n != 1 {
		t.Fatalf("9 calls, 8 of them at once: %d token requests, want 1", n)
	}
	clock.Store(int64(m365sim.DefaultTokenLifetime - tokenRenewal + time.Second))
	if _, err := cred.GetToken(context.Background(), licensingScope); err != nil {
		t.Fatal(err)
	}
	if n := tokens(); n != 2 {
		t.Errorf("after the token was due for renewal: %d token requests, want 2", n)
	}
}
