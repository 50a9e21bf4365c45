package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// The command line is tested as a user runs it (Run with arguments, exit
// code, stdout and stderr) against the Microsoft 365 simulator over TLS and,
// for the cluster commands, a real API server (envtest) reached through a
// kubeconfig file.

// fixture is a started simulator and the CA file that trusts it.
type fixture struct {
	sim    *m365sim.Server
	caFile string
	dir    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, m365sim.Options{DeviceCodeInterval: time.Second})
}

func newFixtureWith(t *testing.T, opts m365sim.Options) *fixture {
	t.Helper()
	sim, err := m365sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{sim: sim, caFile: ca, dir: dir}
}

// app is a registered application of a tenant and its secret file.
type testApp struct {
	tenant, clientID, secret, secretFile string
}

// newTenant adds a tenant (cfg.ID generated when empty) and an app with perms.
func (f *fixture) newTenant(t *testing.T, cfg m365sim.TenantConfig, perms ...string) testApp {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = uuid.NewString()
	}
	if _, err := f.sim.AddTenant(cfg); err != nil {
		t.Fatal(err)
	}
	a := testApp{tenant: cfg.ID, clientID: uuid.NewString(), secret: "s3cr3t-" + uuid.NewString()}
	if err := f.sim.RegisterApp(a.tenant, m365sim.App{ClientID: a.clientID, Secret: a.secret, Permissions: perms}); err != nil {
		t.Fatal(err)
	}
	a.secretFile = f.write(t, "secret-"+a.clientID[:8], a.secret+"\n")
	return a
}

func (f *fixture) write(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// endpoints are the flags that point a command at the simulator.
func (f *fixture) endpoints() []string {
	ep := f.sim.Endpoints()
	return []string{"--authority-host", ep.AuthorityHost, "--licensing-endpoint", ep.Licensing, "--graph-endpoint", ep.Graph, "--ca-file", f.caFile}
}

// creds are the credential flags of a.
func (a testApp) creds() []string {
	return []string{"--tenant", a.tenant, "--client-id", a.clientID, "--client-secret-file", a.secretFile}
}

// runResult is what one run printed and returned.
type runResult struct {
	code        int
	out, errOut string
}

func (r runResult) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.out, r.errOut)
}

// run runs the command line with args and stdin.
func run(ctx context.Context, stdin string, args ...string) runResult {
	var out, errOut bytes.Buffer
	code := Run(ctx, args, Streams{In: strings.NewReader(stdin), Out: &out, Err: &errOut})
	return runResult{code: code, out: out.String(), errOut: errOut.String()}
}

func runArgs(t *testing.T, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return run(ctx, "", args...)
}

// jwtPattern matches an encoded JWT (an access or ID token).
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.`)

// assertNoSecrets fails when r printed a token or any of secrets.
func assertNoSecrets(t *testing.T, r runResult, secrets ...string) {
	t.Helper()
	all := r.out + r.errOut
	if jwtPattern.MatchString(all) {
		t.Errorf("a token was printed:\n%s", r)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("a secret was printed:\n%s", r)
		}
	}
}

// cluster is the package's envtest control plane and an admin kubeconfig.
var cluster struct {
	once       sync.Once
	env        *testsupport.Env
	kubeconfig string
	err        error
}

// startCluster starts the control plane once for the package.
func startCluster(t *testing.T) (*testsupport.Env, string) {
	t.Helper()
	cluster.once.Do(func() {
		cluster.env, cluster.err = testsupport.StartEnv()
		if cluster.err != nil {
			return
		}
		cluster.kubeconfig, cluster.err = kubeconfigFor(cluster.env, envtest.User{Name: "admin", Groups: []string{"system:masters"}})
	})
	if cluster.err != nil {
		t.Fatal(cluster.err)
	}
	return cluster.env, cluster.kubeconfig
}

// kubeconfigFor writes a kubeconfig file of a user of env.
func kubeconfigFor(env *testsupport.Env, u envtest.User) (string, error) {
	au, err := env.Environment.AddUser(u, nil)
	if err != nil {
		return "", err
	}
	b, err := au.KubeConfig()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "kubectl-tpp-kubeconfig-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(b)
	return f.Name(), err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster.env != nil {
		_ = cluster.env.Stop()
		_ = os.Remove(cluster.kubeconfig)
	}
	os.Exit(code)
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T, env *testsupport.Env) string {
	t.Helper()
	ns := "t-" + uuid.NewString()[:8]
	if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func regexpMust(pattern string) *regexp.Regexp { return regexp.MustCompile(pattern) }

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }
