package m365sim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedTokensOnlySkipTheSignatureCheck: once a token was accepted, a
// copy with another tenant in its payload or another signature is still
// refused, and the accepted one still expires. The same claims signed with
// the published ID token key (RS256) are refused too: access tokens have
// their own key.
func TestVerifiedTokensOnlySkipTheSignatureCheck(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.TokenLifetime = 5 * time.Minute })
	tok := f.licensingToken(t)
	products := f.licensing("/v1.0/policies/AllowSelfServicePurchase/products")
	for range 2 { // the second is answered from what the first verified
		if r := f.do(t, "GET", products, tok, nil, nil); r.status != http.StatusOK {
			t.Fatalf("valid token: %d %s", r.status, r.body)
		}
	}
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	rs := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	rs.Header["kid"] = f.sim.keyID
	withIDKey, err := rs.SignedString(f.sim.signingKey)
	if err != nil {
		t.Fatal(err)
	}
	claims["tid"] = "00000000-0000-0000-0000-000000000001"
	other, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte(parts[2])
	sig[10] ^= 1
	for name, forged := range map[string]string{
		"another tenant, same signature": parts[0] + "." + base64.RawURLEncoding.EncodeToString(other) + "." + parts[2],
		"another signature":              parts[0] + "." + parts[1] + "." + string(sig),
		"signed with the ID token key":   withIDKey,
	} {
		r := f.do(t, "GET", products, forged, nil, nil)
		if r.status != http.StatusUnauthorized || r.json(t)["reason"] != errBadToken.Error() {
			t.Errorf("%s: want 401 %q, got %d %s", name, errBadToken, r.status, r.body)
		}
	}
	f.clock.Advance(5*time.Minute + time.Second)
	if r := f.do(t, "GET", products, tok, nil, nil); r.status != http.StatusUnauthorized || r.json(t)["reason"] != errExpiredToken.Error() {
		t.Errorf("the verified token past its lifetime: want 401 %q, got %d %s", errExpiredToken, r.status, r.body)
	}
}

// TestVerifiedTokensDropExpired: the map does not grow with every token
// ever issued; expired ones go once it has doubled.
func TestVerifiedTokensDropExpired(t *testing.T) {
	var v verifiedTokens
	now := time.Unix(1_800_000_000, 0)
	claims := func(life time.Duration) *accessClaims {
		return &accessClaims{RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(now.Add(life))}}
	}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8)}) }
	for i := range 1500 {
		v.put(key(i), claims(time.Minute), now)
	}
	live := key(2000)
	v.put(live, claims(time.Hour), now)
	later := now.Add(2 * time.Minute)
	for i := 3000; len(v.claims) > 100 && i < 6000; i++ {
		v.put(key(i), claims(time.Minute), later)
	}
	if len(v.claims) > 100 {
		t.Fatalf("%d tokens kept, most of them expired", len(v.claims))
	}
	if v.get(live) == nil {
		t.Errorf("a token within its lifetime was dropped")
	}
	if v.get(key(0)) != nil {
		t.Errorf("an expired token was kept")
	}
}
