package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
)

// deviceSim is a simulator whose device codes poll every second (the least
// Entra's answer can say), with a Provider pointed at it.
func deviceSim(t *testing.T, cfg m365sim.TenantConfig) *simFixture {
	t.Helper()
	sim, err := m365sim.New(m365sim.Options{DeviceCodeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	cfg.ID = testTenant
	if _, err := sim.AddTenant(cfg); err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(Options{AuthorityHost: sim.Endpoints().AuthorityHost, HTTPClient: sim.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := licensing.New(licensing.Options{Endpoint: sim.Endpoints().Licensing, HTTPClient: sim.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &simFixture{sim: sim, tenant: testTenant, provider: p, licensing: lc}
}

// signIn runs the device flow; answer acts as the user once the prompt is shown.
func (s *simFixture) signIn(t *testing.T, answer func(userCode string) error) (DeviceSignIn, DeviceCodePrompt, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var prompt DeviceCodePrompt
	res, err := s.provider.SignInWithDeviceCode(ctx, s.tenant, m365sim.CommerceModuleClientID, []string{m365.LicensingScope}, func(p DeviceCodePrompt) {
		prompt = p
		if err := answer(p.UserCode); err != nil {
			t.Errorf("acting as the user: %v", err)
		}
	})
	return res, prompt, err
}

// An approved sign-in yields a refresh token that the controller's delegated
// credential redeems for the licensing API.
func TestDeviceCodeSignIn(t *testing.T) {
	s := deviceSim(t, m365sim.TenantConfig{})
	res, prompt, err := s.signIn(t, func(code string) error {
		_, err := s.sim.ApproveDeviceCode(s.tenant, code, m365sim.DeviceApproval{Roles: []string{m365sim.RoleBillingAdmin}})
		return err
	})
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if prompt.VerificationURI != m365sim.DeviceVerificationURI || !strings.Contains(prompt.Message, prompt.UserCode) || prompt.ExpiresAt.IsZero() {
		t.Errorf("prompt = %+v", prompt)
	}
	if res.RefreshToken == "" || !strings.Contains(res.Scope, "offline_access") {
		t.Fatalf("want a refresh token granted with offline_access, got scope %q", res.Scope)
	}
	store := &memStore{key: "m365/delegated/refreshToken", token: res.RefreshToken}
	cred := mustCredential(t, s.provider, Material{TenantID: s.tenant, ClientID: m365sim.CommerceModuleClientID, RefreshTokens: store})
	if items, err := s.listProducts(t, cred); err != nil || len(items) == 0 {
		t.Fatalf("the signed-in admin lists products: %d, %v", len(items), err)
	}
	if tok, saves := store.state(); saves != 1 || tok == res.RefreshToken {
		t.Errorf("the rotated refresh token must be saved once, saves = %d", saves)
	}
}

// The user declining, and a tenant without the licensing service principal,
// end the flow with Entra's code; no device code or token is in the error.
func TestDeviceCodeRefusals(t *testing.T) {
	t.Run("declined", func(t *testing.T) {
		s := deviceSim(t, m365sim.TenantConfig{})
		_, _, err := s.signIn(t, func(code string) error {
			_, err := s.sim.DeclineDeviceCode(s.tenant, code)
			return err
		})
		if e, ok := m365.AsError(err); !ok || e.Code != "authorization_declined" || !strings.Contains(e.Reason, "AADSTS70000") {
			t.Fatalf("want authorization_declined AADSTS70000, got %v", err)
		}
		if strings.Contains(err.Error(), "DAQAB") {
			t.Errorf("the device code leaked into %q", err)
		}
	})
	t.Run("no licensing service principal", func(t *testing.T) {
		s := deviceSim(t, m365sim.TenantConfig{WithoutServicePrincipals: []string{m365sim.ResourceLicensing}})
		_, _, err := s.signIn(t, func(string) error { t.Error("no prompt may be shown"); return nil })
		if e, ok := m365.AsError(err); !ok || e.Code != "invalid_resource" || !strings.HasPrefix(e.Reason, "AADSTS500011") {
			t.Fatalf("want invalid_resource AADSTS500011, got %v", err)
		}
	})
}
