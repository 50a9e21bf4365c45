// Package testsupport holds helpers shared by the project's tests: StartEnv
// (envtest with the CRDs and a direct client), the API server's
// ServiceAccount issuer for workload identity, SyncBuffer, finding promtool
// and prometheus, and reading the README's tables. It decides nothing the
// controller runs: it must not be imported by the controller's own packages
// (cmd, controllers, internal/m365...), only by tests and the tools under
// hack/ and test/.
package testsupport

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a logger, a
// child process's stdout and stderr) read while they write.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
