package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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

// tokenPolls are the times of the device code polls the simulator saw.
func (s *simFixture) tokenPolls() []time.Time {
	var out []time.Time
	for _, e := range s.sim.Requests(s.tenant).Entries {
		if e.Endpoint == "authority" && e.Route == "token" {
			out = append(out, e.Time)
		}
	}
	return out
}

// authorization_pending keeps polling at the interval; slow_down makes every
// later poll wait 5 s more (RFC 8628 §3.5). A client that ignored it would
// poll again after 1 s and, the code being approved by then, be answered:
// the gap after the slow_down is what proves it waited.
func TestDeviceCodeSlowDown(t *testing.T) {
	s := deviceSim(t, m365sim.TenantConfig{})
	approved := make(chan error, 1)
	res, _, err := s.signIn(t, func(code string) error {
		if _, err := s.sim.SlowDownDeviceCode(s.tenant, code); err != nil {
			return err
		}
		go func() { // approve once the slow_down was answered (the interval grew)
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if dcs, _ := s.sim.DeviceCodes(s.tenant); len(dcs) == 1 && dcs[0].IntervalSeconds == 6 {
					_, err := s.sim.ApproveDeviceCode(s.tenant, code, m365sim.DeviceApproval{Roles: []string{m365sim.RoleBillingAdmin}})
					approved <- err
					return
				}
			}
			approved <- errors.New("the simulator never answered slow_down")
		}()
		return nil
	})
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	if err != nil || res.RefreshToken == "" {
		t.Fatalf("sign-in after slow_down: %v", err)
	}
	polls := s.tokenPolls()
	if len(polls) != 2 {
		t.Fatalf("want 2 polls (slow_down, then the tokens), got %d", len(polls))
	}
	if gap := polls[1].Sub(polls[0]); gap < 6*time.Second-100*time.Millisecond {
		t.Errorf("after slow_down the client waited %v, want the 1 s interval + 5 s", gap)
	}
}

// A code nobody enters expires: the flow ends with expired_token (Entra's
// AADSTS70019), without waiting for the caller's deadline.
func TestDeviceCodeExpired(t *testing.T) {
	sim, err := m365sim.New(m365sim.Options{DeviceCodeInterval: time.Second, DeviceCodeLifetime: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if _, err := sim.AddTenant(m365sim.TenantConfig{ID: testTenant}); err != nil {
		t.Fatal(err)
	}
	p, err := NewProvider(Options{AuthorityHost: sim.Endpoints().AuthorityHost, HTTPClient: sim.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	s := &simFixture{sim: sim, tenant: testTenant, provider: p}
	start := time.Now()
	_, _, err = s.signIn(t, func(string) error { return nil })
	if e, ok := m365.AsError(err); !ok || e.Code != "expired_token" || !strings.HasPrefix(e.Reason, "AADSTS70019") {
		t.Fatalf("want expired_token AADSTS70019, got %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the flow ran %v past the code's 3 s lifetime", took)
	}
	if n := len(s.tokenPolls()); n < 2 {
		t.Errorf("authorization_pending must keep it polling: %d polls", n)
	}
}

// pendingEntra answers a device code that expires after lifetimeSeconds,
// then answers every poll with poll (authorization_pending for ever, or a
// hang): a misbehaving token endpoint that never says expired_token.
func pendingEntra(t *testing.T, lifetimeSeconds int, poll http.HandlerFunc) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/devicecode", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"device_code": "dc-secret", "user_code": "ABCD-EFGH",
			"verification_uri": "https://microsoft.com/devicelogin", "expires_in": lifetimeSeconds, "interval": 1})
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", poll)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestDeviceCodeEndsWhenTheCodeExpires: the flow ends by itself once the
// code's expires_in has passed, whatever the token endpoint keeps saying
// (authorization_pending past expiry: expired_token), and a poll that gets
// no answer ends at the call timeout (Transient); neither error quotes the
// device code.
func TestDeviceCodeEndsWhenTheCodeExpires(t *testing.T) {
	hung := make(chan struct{})
	var releaseOnce sync.Once
	cases := map[string]struct {
		lifetime int
		poll     http.HandlerFunc
		want     m365.Kind
		code     string
	}{
		"pending for ever": {2, func(w http.ResponseWriter, _ *http.Request) {
			entraError(w, http.StatusBadRequest, codeAuthorizationPending, "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.")
		}, m365.Unauthorized, codeExpiredToken},
		"a poll that hangs": {600, func(http.ResponseWriter, *http.Request) { <-hung }, m365.Transient, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := pendingEntra(t, tc.lifetime, tc.poll)
			t.Cleanup(func() { releaseOnce.Do(func() { close(hung) }) }) // before the server closes
			p, err := NewProvider(Options{AuthorityHost: srv.URL, HTTPClient: srv.Client(), CallTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			_, err = p.SignInWithDeviceCode(ctx, testTenant, testClient, []string{testScope}, func(DeviceCodePrompt) {})
			if took := time.Since(start); took > 7*time.Second {
				t.Errorf("the flow ran %v (code lifetime %d s, polls every 1 s, call timeout 1 s)", took, tc.lifetime)
			}
			e, ok := m365.AsError(err)
			if !ok || e.Kind != tc.want || e.Code != tc.code {
				t.Fatalf("want %s %q, got %v", tc.want, tc.code, err)
			}
			if strings.Contains(err.Error(), "dc-secret") {
				t.Errorf("the error quotes the device code: %v", err)
			}
		})
	}
}
