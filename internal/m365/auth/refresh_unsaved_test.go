package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// errDenied is how the Secret store reports a write the API server refused
// for good (RBAC denied it, or the Secret is immutable).
var errDenied = Unavailable(errors.New(`secrets "contoso-delegated" is forbidden: cannot patch resource "secrets"`))

// TestDelegatedSaveRefused: Entra rotated the refresh token but the store
// refused the write. The access token is still used (and cached), the
// rotated token is kept in memory and used for the next redemption (the one
// in the store was invalidated by the rotation), nothing is redeemed again
// until the access token nears expiry, and the failure is reported, naming
// the store and the cause and never a token, until a write succeeds (each
// report tries it once more, with no redemption) or the store holds another
// token.
func TestDelegatedSaveRefused(t *testing.T) {
	d := newDelegated(t)
	d.store.saveErr = errDenied
	cred := mustCredential(t, d.p, Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: d.store})

	tok, err := d.getToken(t, testScope)
	if err != nil || tok != "at-delegated-1" {
		t.Fatalf("first token: got %q, %v; want at-delegated-1 although the rotated token could not be saved", tok, err)
	}
	for range 3 { // the reconciler retrying with backoff
		if tok, err := d.getToken(t, testScope); err != nil || tok != "at-delegated-1" {
			t.Fatalf("again: got %q, %v; want the cached at-delegated-1", tok, err)
		}
	}
	if n := len(d.rts.redemptions()); n != 1 {
		t.Fatalf("redemptions = %d, want 1: a refused save must not re-redeem (each redemption rotates the token)", n)
	}

	report := UnsavedRefreshToken(context.Background(), cred)
	var notSaved *RefreshTokenNotSavedError
	if !errors.As(report, &notSaved) || !notSaved.Permanent() {
		t.Fatalf("UnsavedRefreshToken = %v, want a permanent *RefreshTokenNotSavedError", report)
	}
	msg := report.Error()
	for _, want := range []string{"m365/contoso-delegated/refreshToken", "forbidden"} {
		if !strings.Contains(msg, want) {
			t.Errorf("report %q does not name %q", msg, want)
		}
	}
	if leaked := containsAny(msg, "rt-0", "rt-1", "at-delegated-1"); len(leaked) > 0 {
		t.Errorf("report %q shows %v", msg, leaked)
	}
	if d.store.writes != 2 {
		t.Errorf("writes = %d, want 2: the redemption's, and the report's one more try", d.store.writes)
	}

	// Near expiry the rotated token in memory is redeemed, not the
	// invalidated one in the store.
	d.now = d.now.Add(56 * time.Minute)
	if tok, err := d.getToken(t, testScope); err != nil || tok != "at-delegated-2" {
		t.Fatalf("renewal: got %q, %v; want at-delegated-2 redeemed from rt-1", tok, err)
	}

	// The write is allowed again: the next report saves the newest token
	// and clears.
	d.store.saveErr = nil
	if err := UnsavedRefreshToken(context.Background(), cred); err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	stored, _ := d.store.state()
	if stored != "rt-2" {
		t.Errorf("stored %q, want the newest rotation rt-2", stored)
	}
	if err := UnsavedRefreshToken(context.Background(), cred); err != nil {
		t.Errorf("saved: want no report, got %v", err)
	}
}

// TestDelegatedSaveRefusedThenReplaced: a person replaces the refresh token
// in the store (a new sign-in); the unsaved rotation is dropped and the new
// token is used.
func TestDelegatedSaveRefusedThenReplaced(t *testing.T) {
	d := newDelegated(t)
	d.store.saveErr = errDenied
	cred := mustCredential(t, d.p, Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: d.store})
	if _, err := d.getToken(t, testScope); err != nil {
		t.Fatal(err)
	}
	d.rts.add("rt-new-login")
	d.store.mu.Lock()
	d.store.token, d.store.version, d.store.saveErr = "rt-new-login", d.store.version+1, nil
	d.store.mu.Unlock()
	if err := UnsavedRefreshToken(context.Background(), cred); err != nil {
		t.Fatalf("the store holds another token: want no report, got %v", err)
	}
	d.now = d.now.Add(56 * time.Minute)
	if _, err := d.getToken(t, testScope); err != nil {
		t.Fatal(err)
	}
	stored, _ := d.store.state()
	want := []string{testScope + " offline_access", testScope + " offline_access"}
	if diff := cmp.Diff(want, d.rts.redemptions()); diff != "" || stored != "rt-2" {
		t.Errorf("redemptions (-want +got):\n%s\nstored %q, want rt-2 (rotated from the new login)", diff, stored)
	}
}

// TestDelegatedSaveFailsTransiently: a write that failed for a passing
// reason (timeout, 5xx) is reported as not permanent, and still never
// re-redeems.
func TestDelegatedSaveFailsTransiently(t *testing.T) {
	d := newDelegated(t)
	d.store.saveErr = errors.New("the server is currently unable to handle the request")
	cred := mustCredential(t, d.p, Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: d.store})
	if _, err := d.getToken(t, testScope); err != nil {
		t.Fatal(err)
	}
	var notSaved *RefreshTokenNotSavedError
	if err := UnsavedRefreshToken(context.Background(), cred); !errors.As(err, &notSaved) || notSaved.Permanent() {
		t.Fatalf("got %v, want a transient *RefreshTokenNotSavedError", err)
	}
	if len(d.rts.redemptions()) != 1 {
		t.Errorf("redemptions = %d, want 1", len(d.rts.redemptions()))
	}
}
