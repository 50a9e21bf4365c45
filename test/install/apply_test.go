package install

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestManifestsAcceptedByAPIServer server-side-applies every object of every
// install source to a real API server, with the Prometheus Operator's CRDs
// installed first (TestMain) as on a monitored cluster: schemas, defaulting
// and admission (the ValidatingAdmissionPolicy compiles) accept them. CRDs
// and Namespaces are stored; the rest is applied with dryRun=All so the
// sources do not overwrite each other.
func TestManifestsAcceptedByAPIServer(t *testing.T) {
	ctx := testContext(t)
	for _, s := range Sources {
		t.Run(s.Name, func(t *testing.T) {
			objs := mustRender(t, s)
			if err := EnsureNamespaces(ctx, admin, append([]string{s.Namespace}, s.Watched...)...); err != nil {
				t.Fatal(err)
			}
			if err := Apply(ctx, admin, objs, true); err != nil {
				t.Errorf("the API server refused objects of %s:\n%v", s.Name, err)
			}
			if len(Find(objs, "Deployment")) != 1 || len(Find(objs, "CustomResourceDefinition")) == 0 {
				t.Errorf("%s must install one Deployment and the CRDs", s.Name)
			}
		})
	}
	t.Run("a ServiceMonitor the operator's schema refuses is refused (control)", func(t *testing.T) {
		bad, err := Decode([]byte(`{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
			"metadata": {"name": "bad", "namespace": "default"},
			"spec": {"selector": {}, "endpoints": [{"port": "https", "scheme": "gopher"}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(ctx, admin, bad, true); err == nil || !strings.Contains(err.Error(), "scheme") {
			t.Errorf("a ServiceMonitor with scheme gopher: got %v, want a schema error", err)
		}
	})
}

// TestPodIsRestricted creates the controller's Pod, from each source's
// Deployment template, in a namespace that enforces the restricted Pod
// Security Standard (dry run): the API server's PodSecurity admission admits
// it. A root pod is refused there, so the check is live.
func TestPodIsRestricted(t *testing.T) {
	ctx := testContext(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restricted",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := admin.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, s := range Sources {
		t.Run(s.Name, func(t *testing.T) {
			pod := podOf(t, mustRender(t, s), ns.Name)
			if err := admin.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("the controller's pod violates the restricted Pod Security Standard: %v", err)
			}
		})
	}
	t.Run("a root pod is refused (control)", func(t *testing.T) {
		pod := podOf(t, mustRender(t, Sources[0]), ns.Name)
		pod.Spec.SecurityContext.RunAsNonRoot = ptr.To(false)
		pod.Spec.SecurityContext.RunAsUser = ptr.To[int64](0)
		err := admin.Create(ctx, pod, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("a root pod in a restricted namespace: got %v, want a PodSecurity violation", err)
		}
	})
}

// podOf returns the pod of the single Deployment in objs, placed in ns.
func podOf(t *testing.T, objs []*unstructured.Unstructured, ns string) *corev1.Pod {
	t.Helper()
	d, _ := deploymentOf(t, objs)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "controller-", Namespace: ns}, Spec: d.Spec.Template.Spec}
}
