package auth

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-cmp/cmp"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// memStore is an in-memory RefreshTokenStore with resourceVersion semantics.
// beforeSave and afterLoad, when set, run once, to play a concurrent writer.
type memStore struct {
	mu         sync.Mutex
	key        string
	token      string
	version    int
	saves      int
	beforeSave []func(s *memStore)
	afterLoad  func(s *memStore)
	// saveErr, when set, fails every Save (a denied or refused write).
	saveErr error
	// writes counts every Save attempt.
	writes int
}

func (s *memStore) Key() string { return s.key }

func (s *memStore) Load(context.Context) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, v := s.token, strconv.Itoa(s.version)
	if h := s.afterLoad; h != nil {
		s.afterLoad = nil
		h(s)
	}
	return tok, v, nil
}

func (s *memStore) Save(_ context.Context, token, version string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.saveErr != nil {
		return s.saveErr
	}
	if len(s.beforeSave) > 0 {
		h := s.beforeSave[0]
		s.beforeSave = s.beforeSave[1:]
		h(s)
	}
	if version != strconv.Itoa(s.version) {
		return fmt.Errorf("secret changed since version %s: %w", version, ErrConflict)
	}
	s.token, s.version, s.saves = token, s.version+1, s.saves+1
	return nil
}

func (s *memStore) state() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, s.saves
}

// otherWriterRotates plays another replica that redeemed and rotated the
// token to next (valid at Entra) in the meantime.
func otherWriterRotates(rts *refreshTokens, next string) func(*memStore) {
	return func(s *memStore) {
		rts.add(next)
		s.token, s.version = next, s.version+1
	}
}

type delegatedFixture struct {
	f     *fakeEntra
	rts   *refreshTokens
	store *memStore
	now   time.Time
	p     *Provider
}

func newDelegated(t *testing.T) *delegatedFixture {
	d := &delegatedFixture{f: newFakeEntra(t), rts: newRefreshTokens("rt-0"), store: &memStore{key: "m365/contoso-delegated/refreshToken", token: "rt-0"}}
	d.now = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	d.f.setRespond(d.rts.respond(3600))
	d.p = d.f.provider(t, Options{Now: func() time.Time { return d.now }})
	return d
}

func (d *delegatedFixture) getToken(t *testing.T, scope string) (string, error) {
	t.Helper()
	cred := mustCredential(t, d.p, Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: d.store})
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	return tok.Token, err
}

func TestDelegatedRotatesAndCachesPerScope(t *testing.T) {
	d := newDelegated(t)
	steps := []struct {
		reason    string
		advance   time.Duration
		scope     string
		wantToken string
		wantRT    string
	}{
		{reason: "first call redeems rt-0 and stores the rotated token", scope: testScope, wantToken: "at-delegated-1", wantRT: "rt-1"},
		{reason: "same scope inside its lifetime is served from cache", advance: 50 * time.Minute, scope: testScope, wantToken: "at-delegated-1", wantRT: "rt-1"},
		{reason: "another resource needs its own token, redeemed with the rotated token", scope: m365.GraphScope, wantToken: "at-delegated-2", wantRT: "rt-2"},
		{reason: "5 minutes before expiry the token is renewed", advance: 6 * time.Minute, scope: testScope, wantToken: "at-delegated-3", wantRT: "rt-3"},
	}
	for _, s := range steps {
		d.now = d.now.Add(s.advance)
		tok, err := d.getToken(t, s.scope)
		if err != nil {
			t.Fatalf("%s: %v", s.reason, err)
		}
		rt, _ := d.store.state()
		if diff := cmp.Diff([2]string{s.wantToken, s.wantRT}, [2]string{tok, rt}); diff != "" {
			t.Errorf("%s: [access token, stored refresh token] (-want +got):\n%s", s.reason, diff)
		}
	}
	want := []string{testScope + " offline_access", m365.GraphScope + " offline_access", testScope + " offline_access"}
	if diff := cmp.Diff(want, d.rts.redemptions()); diff != "" {
		t.Errorf("scopes redeemed (-want +got):\n%s", diff)
	}
}

func TestDelegatedConflicts(t *testing.T) {
	cases := map[string]struct {
		reason     string
		setup      func(d *delegatedFixture)
		wantToken  string
		wantStored string
		wantErr    m365.Kind
	}{
		"another replica rotated first": {
			reason: "on a conflict the stored (newer) token is redeemed once and its rotation saved; ours is dropped, never written over theirs",
			setup: func(d *delegatedFixture) {
				d.store.beforeSave = []func(*memStore){otherWriterRotates(d.rts, "rt-other")}
			},
			wantToken: "at-delegated-2", wantStored: "rt-2",
		},
		"only the version moved": {
			reason: "someone touched the Secret without changing the token: save ours with the new version",
			setup: func(d *delegatedFixture) {
				d.store.beforeSave = []func(*memStore){func(s *memStore) { s.version++ }}
			},
			wantToken: "at-delegated-1", wantStored: "rt-1",
		},
		"rotated after our load": {
			reason: "Entra refuses the token another replica just used: re-load and redeem the stored one",
			setup: func(d *delegatedFixture) {
				d.rts = newRefreshTokens("rt-other")
				d.f.setRespond(d.rts.respond(3600))
				d.store.afterLoad = otherWriterRotates(d.rts, "rt-other")
			},
			wantToken: "at-delegated-1", wantStored: "rt-1",
		},
		"conflict twice": {
			reason: "a second conflict gives up for this reconcile, leaving the other writer's token in place",
			setup: func(d *delegatedFixture) {
				d.store.beforeSave = []func(*memStore){otherWriterRotates(d.rts, "rt-other"), otherWriterRotates(d.rts, "rt-third")}
			},
			wantStored: "rt-third", wantErr: m365.Transient,
		},
		"token revoked": {
			reason: "a refused token that nobody replaced is a user error",
			setup: func(d *delegatedFixture) {
				d.rts = newRefreshTokens()
				d.f.setRespond(d.rts.respond(3600))
			},
			wantStored: "rt-0", wantErr: m365.Unauthorized,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := newDelegated(t)
			tc.setup(d)
			tok, err := d.getToken(t, testScope)
			if diff := cmp.Diff(tc.wantErr, m365.KindOf(err)); diff != "" {
				t.Errorf("%s: error kind of %v (-want +got):\n%s", tc.reason, err, diff)
			}
			stored, _ := d.store.state()
			if diff := cmp.Diff([2]string{tc.wantToken, tc.wantStored}, [2]string{tok, stored}); diff != "" {
				t.Errorf("%s: [access token, stored refresh token] (-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDelegatedErrorHidesRefreshToken(t *testing.T) {
	d := newDelegated(t)
	d.store.token = "rt-secret-value"
	_, err := d.getToken(t, testScope)
	want := errorView{Kind: m365.Unauthorized, Op: "get token", StatusCode: 400, Code: "invalid_grant",
		Reason: "AADSTS70000: The provided value for refresh_token [REDACTED] is not valid."}
	if diff := cmp.Diff(want, viewOf(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "rt-secret-value") {
		t.Errorf("error %q shows the refresh token", err)
	}
}

func TestDelegatedMissingToken(t *testing.T) {
	d := newDelegated(t)
	d.store.token = ""
	_, err := d.getToken(t, testScope)
	want := errorView{Kind: m365.Unauthorized, Op: "get token", Code: "credential_unavailable", Reason: "refresh token m365/contoso-delegated/refreshToken"}
	if diff := cmp.Diff(want, viewOf(t, err)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDelegatedConcurrentCallsRedeemOnce(t *testing.T) {
	d := newDelegated(t)
	release := d.f.hold()
	t.Cleanup(release)
	cred := mustCredential(t, d.p, Material{TenantID: testTenant, ClientID: testClient, RefreshTokens: d.store})
	tokens := getConcurrently(t, cred, 8, func() { <-d.f.arrived; release() })
	for _, tok := range tokens {
		if tok != "at-delegated-1" {
			t.Errorf("got token %q, want at-delegated-1", tok)
		}
	}
	stored, saves := d.store.state()
	if diff := cmp.Diff([3]any{int32(1), "rt-1", 1}, [3]any{d.f.tokenRequests.Load(), stored, saves}); diff != "" {
		t.Errorf("[token requests, stored token, saves] (-want +got):\n%s", diff)
	}
}
