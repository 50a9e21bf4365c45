package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// managerContainer is the container of config/manager's Deployment that
// runs the controller.
const managerContainer = "manager"

// concurrencyFlag is the controller's worker count.
const concurrencyFlag = "max-concurrent-reconciles"

// controllerArgs are the controller's command line as the harness runs it.
type controllerArgs struct {
	// Deployed are the args of config/manager/manager.yaml, unchanged.
	Deployed []string `json:"deployed"`
	// Args is what the harness runs: Deployed with substitutions and the
	// endpoint flags.
	Args []string `json:"args"`
	// Env is added to the harness's environment: what a pod of the
	// Deployment would have.
	Env []string `json:"env,omitempty"`
	// Changes says what was substituted, added or dropped and why.
	Changes []string `json:"changes"`
	// Concurrency is --max-concurrent-reconciles (from Args or its default).
	Concurrency int `json:"maxConcurrentReconciles"`
}

// deployedContainer reads the manager container (args, resources) from the
// Deployment in config/manager/manager.yaml.
func deployedContainer(path string) (corev1.Container, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return corev1.Container{}, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return corev1.Container{}, fmt.Errorf("%s: no Deployment with a %q container", path, managerContainer)
			}
			return corev1.Container{}, fmt.Errorf("%s: %w", path, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == managerContainer {
				return c, nil
			}
		}
	}
}

// softMemoryLimitRatio is the share of the container's memory limit the
// binary gives the Go runtime as its soft limit in a pod (cmd/scale.go reads
// it from the cgroup). Outside a container there is no cgroup limit, so the
// harness sets GOMEMLIMIT to the same figure: the garbage collector then
// works as it would in the Deployment's pod.
const softMemoryLimitRatio = 0.65

// memoryLimitEnv is the GOMEMLIMIT a pod with this memory limit runs with,
// "" without a limit.
func memoryLimitEnv(limits corev1.ResourceList) (env, change string) {
	q, ok := limits[corev1.ResourceMemory]
	if !ok || q.IsZero() {
		return "", ""
	}
	soft := int64(float64(q.Value()) * softMemoryLimitRatio)
	env = fmt.Sprintf("GOMEMLIMIT=%dMiB", soft>>20)
	return env, fmt.Sprintf("set %s (in a pod: %.0f%% of the container's %s memory limit, from the cgroup)", env, softMemoryLimitRatio*100, q.String())
}

// binaryFlags are the flags a Go binary lists in its -help output, with
// their defaults ("" when none is printed).
type binaryFlags map[string]string

var (
	helpFlagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)`)
	helpDefault  = regexp.MustCompile(`\(default (.*)\)\s*$`)
)

// flagsOf runs bin -help and parses the flag package's usage output.
func flagsOf(bin string) (binaryFlags, error) {
	out, err := exec.Command(bin, "-help").CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("%s -help: %w", bin, err)
	}
	flags := parseHelp(string(out))
	if len(flags) == 0 {
		return nil, fmt.Errorf("%s -help listed no flags:\n%s", bin, out)
	}
	return flags, nil
}

// parseHelp reads flag names and defaults from the flag package's
// PrintDefaults output.
func parseHelp(out string) binaryFlags {
	flags := binaryFlags{}
	current := ""
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			flags[current] = ""
		}
		if m := helpDefault.FindStringSubmatch(line); m != nil && current != "" {
			flags[current] = strings.Trim(m[1], `"`)
		}
	}
	return flags
}

// splitFlag splits "--name=value" or "--name"; ok is false for anything else.
func splitFlag(arg string) (name, value string, hasValue, ok bool) {
	if !strings.HasPrefix(arg, "-") {
		return "", "", false, false
	}
	name = strings.TrimLeft(arg, "-")
	name, value, hasValue = strings.Cut(name, "=")
	return name, value, hasValue, true
}

// endpointFlags point the controller at the simulator and the local API
// server.
type endpointFlags struct {
	licensing, graph, authority, caFile, kubeconfig string
}

// buildControllerArgs turns the deployed args into the harness's: bind
// addresses become free local ports, --leader-elect gets a namespace (or is
// dropped when the binary cannot take one outside a cluster), and the
// endpoint flags and --kubeconfig are added.
func buildControllerArgs(deployed []string, flags binaryFlags, ep endpointFlags, namespace string) (controllerArgs, error) {
	ca := controllerArgs{Deployed: deployed}
	for _, arg := range deployed {
		name, value, hasValue, ok := splitFlag(arg)
		if !ok {
			return ca, fmt.Errorf("config/manager arg %q is not a flag", arg)
		}
		if _, known := flags[name]; !known {
			return ca, fmt.Errorf("config/manager passes --%s, which the controller binary does not know", name)
		}
		switch {
		case strings.HasSuffix(name, "bind-address") && value != "0":
			addr, err := procs.FreeAddr()
			if err != nil {
				return ca, err
			}
			ca.Changes = append(ca.Changes, fmt.Sprintf("--%s=%s (deployed %s): a free local port", name, addr, value))
			arg = "--" + name + "=" + addr
		case name == "leader-elect" && (!hasValue || value == "true"):
			if _, known := flags["leader-election-namespace"]; !known {
				ca.Changes = append(ca.Changes, "dropped --leader-elect: outside a cluster controller-runtime needs a leader-election namespace and the binary has no --leader-election-namespace flag")
				continue
			}
			ca.Args = append(ca.Args, arg)
			arg = "--leader-election-namespace=" + namespace
			ca.Changes = append(ca.Changes, "added "+arg+" (in a cluster: the pod's namespace)")
		}
		ca.Args = append(ca.Args, arg)
	}
	// A pod knows its namespace (the ServiceAccount's namespace file); the
	// controller reads POD_NAMESPACE first, so the tenant ownership Leases
	// go where config/rbac grants them, as in a cluster.
	ca.Env = []string{"POD_NAMESPACE=" + namespace}
	ca.Changes = append(ca.Changes, "set POD_NAMESPACE="+namespace+" (in a cluster: the pod's namespace file)")
	ca.Args = append(ca.Args,
		"--licensing-endpoint="+ep.licensing, "--graph-endpoint="+ep.graph, "--authority-host="+ep.authority,
		"--ca-file="+ep.caFile, "--kubeconfig="+ep.kubeconfig)
	ca.Changes = append(ca.Changes, "added the endpoint flags (simulator), --ca-file and --kubeconfig")
	var err error
	ca.Concurrency, err = concurrency(ca.Args, flags)
	return ca, err
}

// concurrency is --max-concurrent-reconciles from args, else its default.
func concurrency(args []string, flags binaryFlags) (int, error) {
	value := flags[concurrencyFlag]
	if v := argValue(args, concurrencyFlag); v != "" {
		value = v
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("--%s: cannot tell the controller's concurrency from %q", concurrencyFlag, value)
	}
	return n, nil
}

// argValue returns the value of the last --name=value in args.
func argValue(args []string, name string) string {
	value := ""
	for _, arg := range args {
		if n, v, hasValue, _ := splitFlag(arg); n == name && hasValue {
			value = v
		}
	}
	return value
}

// boolArg returns boolean flag --name from args (bare or =true/false), else def.
func boolArg(args []string, name string, def bool) bool {
	for _, arg := range args {
		if n, v, hasValue, _ := splitFlag(arg); n == name {
			def = !hasValue || v == "true"
		}
	}
	return def
}
