package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365sim"
	"github.com/tenantpolicy/purchase-policy-controller/internal/testsupport"
)

// A fleet run: a control plane, the simulator binary with generated
// tenants, one policy per tenant and the controller binary, each a process
// of its own, as in production; the test acts only through their APIs
// (Kubernetes, the simulator's admin API) and signals.

// fleet is one run's control plane, simulator process and policies.
type fleet struct {
	dir        string
	k8s        client.Client
	kubeconfig string
	ns         string
	sim        m365sim.ReadyInfo
	admin      *http.Client
	// controller is the running controller binary (nil between runs).
	controller *controllerProc
	restarts   int
}

// newFleet starts a control plane and the simulator binary with n tenants
// and the given extra flags.
func newFleet(t *testing.T, ctx context.Context, n int, simFlags ...string) *fleet {
	t.Helper()
	logf.SetLogger(logr.Discard())
	env, err := testsupport.StartEnv()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	f := &fleet{dir: t.TempDir(), k8s: env.Client, ns: "fleet"}
	f.kubeconfig = filepath.Join(f.dir, "kubeconfig")
	if err := os.WriteFile(f.kubeconfig, env.Environment.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	f.startSimulator(t, ctx, n, simFlags)
	if err := f.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}); err != nil {
		t.Fatal(err)
	}
	return f
}

// startSimulator runs the simulator binary and waits for its ready file.
func (f *fleet) startSimulator(t *testing.T, ctx context.Context, n int, extra []string) {
	t.Helper()
	ready, ca := filepath.Join(f.dir, "sim-ready.json"), filepath.Join(f.dir, "sim-ca.pem")
	args := append([]string{"--tenants", strconv.Itoa(n), "--ready-file", ready, "--ca-file", ca}, extra...)
	log := &testsupport.SyncBuffer{}
	cmd := exec.CommandContext(ctx, bins.Paths["m365sim"], args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("simulator log:\n%s", log.String())
		}
	})
	waitFor(ctx, t, "the simulator's ready file", func(context.Context) error {
		b, err := os.ReadFile(ready)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &f.sim)
	})
	var err error
	if f.admin, err = m365.NewHTTPClient(ca); err != nil {
		t.Fatal(err)
	}
	f.admin.Timeout = 30 * time.Second
}

// simDo calls the simulator's admin API (path below /_sim) with JSON in and out.
func (f *fleet) simDo(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, f.sim.AdminURL+"/_sim"+path, body)
	if err != nil {
		return err
	}
	resp, err := f.admin.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (f *fleet) mustSim(t *testing.T, ctx context.Context, method, path string, in, out any) {
	t.Helper()
	if err := f.simDo(ctx, method, path, in, out); err != nil {
		t.Fatal(err)
	}
}

// products returns a tenant's product values as the admin center shows them.
func (f *fleet) products(t *testing.T, ctx context.Context, tenant string) map[string]string {
	t.Helper()
	var items []struct {
		ProductID   string `json:"productId"`
		PolicyValue string `json:"policyValue"`
	}
	f.mustSim(t, ctx, "GET", "/tenants/"+tenant+"/products", nil, &items)
	out := map[string]string{}
	for _, it := range items {
		out[it.ProductID] = it.PolicyValue
	}
	return out
}

// requests returns a tenant's request log.
func (f *fleet) requests(t *testing.T, ctx context.Context, tenant string) m365sim.RequestLog {
	t.Helper()
	var log m365sim.RequestLog
	f.mustSim(t, ctx, "GET", "/tenants/"+tenant+"/requests", nil, &log)
	return log
}

// stats returns the fleet's request counters.
func (f *fleet) stats(t *testing.T, ctx context.Context) m365sim.RequestStats {
	t.Helper()
	var st m365sim.RequestStats
	f.mustSim(t, ctx, "GET", "/requests", nil, &st)
	return st
}

// policyName is the name of tenant i's policy.
func policyName(i int) string { return fmt.Sprintf("tenant-%03d", i) }

// createPolicies creates a Secret and a policy per tenant; spec adjusts
// each template.
func (f *fleet) createPolicies(t *testing.T, ctx context.Context, spec func(i int, p *v1.TenantPurchasePolicy)) {
	t.Helper()
	for i, tn := range f.sim.Tenants {
		app := tn.Apps[0]
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: policyName(i), Namespace: f.ns}, StringData: map[string]string{"clientSecret": app.Secret}}
		p := &v1.TenantPurchasePolicy{
			ObjectMeta: metav1.ObjectMeta{Name: policyName(i), Namespace: f.ns},
			Spec: v1.TenantPurchasePolicySpec{TenantID: tn.ID, TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
				Auth:     v1.Auth{ClientID: app.ClientID, ClientSecretRef: &v1.SecretKeyRef{Name: secret.Name, Key: "clientSecret"}},
				Mode:     v1.ModeEnforce,
				Interval: metav1.Duration{Duration: time.Hour},
			}},
		}
		spec(i, p)
		for _, o := range []client.Object{secret, p} {
			if err := f.k8s.Create(ctx, o); err != nil {
				t.Fatalf("creating %s: %v", o.GetName(), err)
			}
		}
	}
}

// policies lists the fleet's policies by name.
func (f *fleet) policies(ctx context.Context) (map[string]*v1.TenantPurchasePolicy, error) {
	var list v1.TenantPurchasePolicyList
	if err := f.k8s.List(ctx, &list, client.InNamespace(f.ns)); err != nil {
		return nil, err
	}
	out := make(map[string]*v1.TenantPurchasePolicy, len(list.Items))
	for i := range list.Items {
		out[list.Items[i].Name] = &list.Items[i]
	}
	return out, nil
}

// converged: the policy's last run of its current spec succeeded and every
// managed product has its desired value.
func converged(p *v1.TenantPurchasePolicy) bool {
	c := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && p.Status.ObservedGeneration == p.Generation &&
		p.Status.Summary.Drifted == 0 && p.Status.Summary.Managed > 0
}

// waitAll waits until done holds for every policy of the fleet and returns
// them; it fails the test after timeout, naming a policy still pending.
func (f *fleet) waitAll(t *testing.T, ctx context.Context, timeout time.Duration, what string, done func(*v1.TenantPurchasePolicy) bool) map[string]*v1.TenantPurchasePolicy {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ps, err := f.policies(ctx)
		pending := ""
		n := 0
		if err == nil {
			for name, p := range ps {
				if !done(p) {
					n++
					pending = name
				}
			}
			if n == 0 && len(ps) == len(f.sim.Tenants) {
				return ps
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			detail := ""
			if p := ps[pending]; p != nil {
				b, _ := json.Marshal(p.Status.Conditions)
				detail = string(b)
			}
			t.Fatalf("%s: %d of %d policies pending after %s (err %v), e.g. %s: %s", what, n, len(f.sim.Tenants), timeout, err, pending, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// reconcileNow asks every policy to run now (the reconcile-now annotation).
func (f *fleet) reconcileNow(t *testing.T, ctx context.Context) string {
	t.Helper()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
	ps, err := f.policies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if err := f.annotate(ctx, p, stamp); err != nil {
			t.Fatal(err)
		}
	}
	return stamp
}

// annotate sets the reconcile-now annotation of one policy.
func (f *fleet) annotate(ctx context.Context, p *v1.TenantPurchasePolicy, stamp string) error {
	patch := client.MergeFrom(p.DeepCopy())
	metav1.SetMetaDataAnnotation(&p.ObjectMeta, v1.RequestedAtAnnotation, stamp)
	return f.k8s.Patch(ctx, p, patch)
}

// controllerProc is one run of the controller binary.
type controllerProc struct {
	cmd  *exec.Cmd
	log  *testsupport.SyncBuffer
	done chan struct{}
}

// startController runs the controller binary against the control plane and
// the simulator, with extra flags.
func (f *fleet) startController(t *testing.T, ctx context.Context, extra ...string) {
	t.Helper()
	args := append([]string{
		"--licensing-endpoint=" + f.sim.Licensing, "--graph-endpoint=" + f.sim.Graph, "--authority-host=" + f.sim.AuthorityHost,
		"--ca-file=" + f.sim.CAFile, "--metrics-bind-address=0", "--health-probe-bind-address=0", "--lease-namespace=" + f.ns,
	}, extra...)
	c := &controllerProc{log: &testsupport.SyncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, bins.Paths["manager"], args...)
	c.cmd.Env = append(os.Environ(), "KUBECONFIG="+f.kubeconfig)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	f.controller = c
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(shutdownTimeout):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("controller log (last 80 lines):\n%s", tail(c.log.String(), 80))
		}
	})
}

// kill SIGKILLs the controller: no shutdown, no last status patch.
func (f *fleet) kill(t *testing.T) {
	t.Helper()
	if err := f.controller.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-f.controller.done
	f.restarts++
}
