package procs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// FindRoot returns root when set, otherwise walks up from the working
// directory to the directory holding this module's go.mod: the harnesses
// find config/ and bin/ there.
func FindRoot(root string) (string, error) {
	if root != "" {
		return root, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && containsModule(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found (run from inside the repository or pass --root)")
		}
		dir = parent
	}
}

// modulePath is this repository's Go module.
const modulePath = "github.com/tenantpolicy/purchase-policy-controller"

func containsModule(gomod []byte) bool {
	for line := range strings.Lines(string(gomod)) {
		if strings.TrimSpace(line) == "module "+modulePath {
			return true
		}
	}
	return false
}
