package auth

import (
	"context"
	"errors"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// A refresh token rotated by Entra that its store refused to take (an
// immutable Secret, a denied write) is kept here rather than lost: every
// redemption rotates the token and may invalidate the one redeemed, so
// redeeming the stored token again (what a retry would do) could fail, and
// each retry would lose one more rotation. The access token of that
// redemption is used and cached; the store is only written again, never
// redeemed from, until the access token nears expiry.

// storeState is what every credential of one refresh-token store shares.
type storeState struct {
	// mu serializes redemptions and writes of the store.
	mu sync.Mutex
	// pending is the newest rotation the store has not taken, nil when the
	// store holds the newest token.
	pending *unsaved
}

// unsaved is a rotated refresh token the store refused.
type unsaved struct {
	// token is the rotated refresh token; base is the token the store held
	// when it was redeemed (from it or from an earlier unsaved rotation).
	token, base string
}

// newest returns the refresh token to redeem when the store holds stored:
// the unsaved rotation while the store still holds its base, else stored
// (a person or another writer replaced it: that token wins). The caller
// holds mu.
func (st *storeState) newest(stored string) string {
	if p := st.pending; p != nil {
		if p.base == stored {
			return p.token
		}
		st.pending = nil
	}
	return stored
}

// keep records the outcome of saving a rotation: a refused save keeps the
// rotation unsaved and the caller goes on (nil: the access token is used all
// the same); a success clears what was unsaved; any other error is
// returned. The caller holds mu.
func (st *storeState) keep(err error) error {
	var ns *RefreshTokenNotSavedError
	switch {
	case err == nil:
		st.pending = nil
		return nil
	case errors.As(err, &ns) && ns.rotated != "":
		st.pending = &unsaved{token: ns.rotated, base: ns.base}
		return nil
	}
	return err
}

// RefreshTokenNotSavedError says a rotated refresh token could not be
// written back to its store. Its message names the store and the cause,
// never a token.
type RefreshTokenNotSavedError struct {
	// Store is the store's key, e.g. "namespace/secret/key".
	Store string
	cause string
	err   error
	// rotated is the token not saved, base the one the store held.
	rotated, base string
}

func notSaved(store string, err error, tokens ...string) *RefreshTokenNotSavedError {
	cause := m365.CleanText(err.Error(), m365.MaxReasonLength, tokens...)
	return &RefreshTokenNotSavedError{Store: store, cause: cause, err: err}
}

func (e *RefreshTokenNotSavedError) Error() string {
	return "the rotated refresh token could not be saved to " + e.Store + ": " + e.cause
}

func (e *RefreshTokenNotSavedError) Unwrap() error { return e.err }

// Permanent tells whether the store refused the write for a reason a person
// must fix (marked Unavailable: denied, immutable, invalid, gone), rather
// than a passing one (a timeout, a 5xx).
func (e *RefreshTokenNotSavedError) Permanent() bool { return IsUnavailable(e.err) }

// UnsavedRefreshToken reports a *RefreshTokenNotSavedError when cred, a
// delegated credential, holds a rotated refresh token its store has not
// taken. It first tries once more, without redeeming anything: the store
// is read, and if it still holds the token the rotation was redeemed from,
// the rotation is written. It returns nil when there is nothing unsaved,
// when that write succeeds, when the store now holds another token (a
// person replaced it), and for any other kind of credential.
func UnsavedRefreshToken(ctx context.Context, cred azcore.TokenCredential) error {
	c, ok := cred.(*refreshCredential)
	if !ok {
		return nil
	}
	return c.saveUnsaved(ctx)
}

func (c *refreshCredential) saveUnsaved(ctx context.Context) error {
	st := c.state
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.pending
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stored, version, err := c.store.Load(ctx)
	if err != nil {
		return notSaved(c.store.Key(), err, p.token, p.base)
	}
	if stored != p.base {
		st.pending = nil
		return nil
	}
	if err := c.store.Save(ctx, p.token, version); err != nil {
		return notSaved(c.store.Key(), err, p.token, p.base)
	}
	st.pending = nil
	return nil
}
