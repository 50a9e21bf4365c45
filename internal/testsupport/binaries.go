package testsupport

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries are the binaries a test package runs, built from this tree so
// the tests run exactly the code under review.
type Binaries struct {
	// Root is the repository root.
	Root string
	// Paths are the built binaries by name.
	Paths map[string]string
}

// MainWithBinaries builds pkgs (binary name → package relative to the
// repository root, which is root relative to the test's directory) into a
// temp directory, runs the tests with them in bins, removes them and
// returns the exit code for os.Exit.
func MainWithBinaries(m *testing.M, root string, pkgs map[string]string, bins *Binaries) int {
	dir, err := os.MkdirTemp("", "tpp-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	if bins.Root, err = filepath.Abs(root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	bins.Paths = map[string]string{}
	for name, pkg := range pkgs {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = bins.Root
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, b)
			return 2
		}
		bins.Paths[name] = out
	}
	return m.Run()
}
