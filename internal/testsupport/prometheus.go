package testsupport

import (
	"fmt"
	"os/exec"
)

// PrometheusTool finds name (prometheus or promtool, from Debian's
// prometheus package) on PATH, or says how to install it.
func PrometheusTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: install Debian's prometheus package (apt-get install -y prometheus, as .ci/run does; its service is not needed) or put %s on PATH", name, name)
	}
	return p, nil
}
