package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldOwner is the field manager of the tests' server-side applies.
const FieldOwner = "purchase-policy-controller-tests"

// crdEstablishTimeout bounds the wait for applied CRDs to be served.
const crdEstablishTimeout = 30 * time.Second

// PrometheusOperatorCRDs returns the Prometheus Operator's ServiceMonitor and
// PrometheusRule CRDs, from the YAML its Go module publishes.
func PrometheusOperatorCRDs() ([]*unstructured.Unstructured, error) {
	dir, err := Tool("prometheus-operator-crds")
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, f := range []string{"monitoring.coreos.com_servicemonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		o, err := Decode(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// EnsureNamespaces creates the namespaces that do not exist yet.
func EnsureNamespaces(ctx context.Context, c client.Client, names ...string) error {
	for _, n := range names {
		err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// Apply server-side-applies objs in install order: CRDs first (then waits
// until they are served), Namespaces, then the rest. With dryRun, everything
// but CRDs and Namespaces is applied with dryRun=All: the API server
// validates and admits it fully and stores nothing, so several installs can
// be checked against one server.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, dryRun bool) error {
	var crds, namespaces, rest []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			crds = append(crds, o)
		case "Namespace":
			namespaces = append(namespaces, o)
		default:
			rest = append(rest, o)
		}
	}
	var errs []error
	for _, o := range append(crds, namespaces...) {
		errs = append(errs, apply(ctx, c, o))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := waitEstablished(ctx, c, crds); err != nil {
		return err
	}
	for _, o := range rest {
		if dryRun {
			errs = append(errs, apply(ctx, c, o, client.DryRunAll))
		} else {
			errs = append(errs, apply(ctx, c, o))
		}
	}
	return errors.Join(errs...)
}

func apply(ctx context.Context, c client.Client, o *unstructured.Unstructured, opts ...client.ApplyOption) error {
	opts = append(opts, client.FieldOwner(FieldOwner), client.ForceOwnership)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), opts...); err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

// waitEstablished waits until every CRD is Established, so objects of its
// kinds can be applied.
func waitEstablished(ctx context.Context, c client.Client, crds []*unstructured.Unstructured) error {
	for _, o := range crds {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, crdEstablishTimeout, true, func(ctx context.Context) (bool, error) {
			var crd apiextensionsv1.CustomResourceDefinition
			if err := c.Get(ctx, client.ObjectKey{Name: o.GetName()}, &crd); err != nil {
				return false, err
			}
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", o.GetName(), err)
		}
	}
	return nil
}
