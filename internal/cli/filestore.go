package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
)

// fileStore keeps a delegated refresh token in a file, for
// --refresh-token-file: Entra rotates the token at every redemption, so the
// new one is written back (0600, replaced atomically) as the controller
// writes it back to its Secret. The version is a hash of the content, so a
// concurrent change is a conflict, never overwritten.
type fileStore struct{ path string }

func fileRefreshTokens(path string) auth.RefreshTokenStore { return &fileStore{path: path} }

// Key is the file's absolute path.
func (s *fileStore) Key() string {
	abs, err := filepath.Abs(s.path)
	if err != nil {
		return s.path
	}
	return abs
}

func (s *fileStore) Load(context.Context) (string, string, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return "", "", auth.Unavailable(fmt.Errorf("--refresh-token-file: %w", err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", "", fmt.Errorf("--refresh-token-file %s: %w", s.path, auth.ErrNoRefreshToken)
	}
	return tok, versionOf(tok), nil
}

func (s *fileStore) Save(ctx context.Context, token, version string) error {
	cur, v, err := s.Load(ctx)
	if err != nil {
		return err
	}
	if v != version || cur == "" {
		return fmt.Errorf("--refresh-token-file %s changed meanwhile: %w", s.path, auth.ErrConflict)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".refresh-token-*")
	if err != nil {
		return fmt.Errorf("--refresh-token-file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(token + "\n"); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("--refresh-token-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--refresh-token-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("--refresh-token-file: %w", err)
	}
	return nil
}

func versionOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:8])
}
