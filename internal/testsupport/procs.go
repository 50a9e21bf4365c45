package testsupport

import (
	"bytes"
	"os"
	"path/filepath"
)

// ProcessesMentioning lists "pid: cmdline" of the processes whose command
// line contains s: a harness that cleaned up leaves none that mention its
// temp directory.
func ProcessesMentioning(s string) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		pid := filepath.Base(filepath.Dir(p))
		out = append(out, pid+": "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}
