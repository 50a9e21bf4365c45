package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365"
)

// TestRestoreGivesUp: a deletion with deletionPolicy Restore that fails for
// a reason retrying cannot fix (a missing Secret, a refused credential, a
// missing permission, a tenant that no longer exists, no products listed)
// is counted in status.restoreAttempts; the third releases the finalizer
// with a RestoreSkipped Warning naming the cause. Every attempt that keeps
// the finalizer says how to release it now. Throttling and 5xx are retried
// without counting: they pass.
func TestRestoreGivesUp(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	causes := map[string]struct {
		err     error
		counted bool
		cause   string
	}{
		"Secret missing": {stalled(v1.ReasonSecretNotFound, "Secret ns/app not found"), true, "Secret ns/app not found"},
		"401":            {classify(&m365.Error{Kind: m365.Unauthorized, Op: "get token", StatusCode: 401, Code: "invalid_client"}), true, "invalid_client"},
		"403":            {classify(&m365.Error{Kind: m365.Forbidden, Op: "list products", StatusCode: 403}), true, "list products: Forbidden"},
		"tenant deleted": {classify(&m365.Error{Kind: m365.Unauthorized, Op: "get token", StatusCode: 400, Code: "invalid_request",
			Reason: "AADSTS90002: Tenant 'contoso' not found."}), true, "AADSTS90002"},
		"tenant unknown to licensing": {classify(&m365.Error{Kind: m365.NotFound, Op: "list products", StatusCode: 404}), true, "list products: NotFound"},
		"no products":                 {errEmptyProductList, true, "listed no products"},
		"5xx":                         {classify(&m365.Error{Kind: m365.Transient, Op: "set product", StatusCode: 503}), false, ""},
		"throttled":                   {classify(&m365.Error{Kind: m365.Throttled, Op: "list products", StatusCode: 429, RetryAfter: time.Minute}), false, ""},
	}
	for name, c := range causes {
		for attempts := int32(0); attempts < 3; attempts++ {
			t.Run(fmt.Sprintf("%s/attempt %d", name, attempts+1), func(t *testing.T) {
				p := &v1.TenantPurchasePolicy{Spec: v1.TenantPurchasePolicySpec{TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
					Mode: v1.ModeEnforce, DeletionPolicy: v1.DeletionRestore, Interval: metav1.Duration{Duration: time.Hour}}}}
				p.Status.RestoreAttempts = attempts
				s := &syncState{policy: p, base: p.DeepCopy(), now: now, err: c.err, deleting: true}
				o := computeOutcome(s)
				recordStatus(s, o)
				rec := &fakeRecorder{}
				(&TenantPurchasePolicyReconciler{Recorder: rec}).flushEvents(s, o)

				wantAttempts, release := attempts, false
				if c.counted {
					wantAttempts++
					release = wantAttempts == 3
				}
				if p.Status.RestoreAttempts != wantAttempts || o.releasesFinalizer() != release {
					t.Fatalf("restoreAttempts = %d, released = %v; want %d, %v", p.Status.RestoreAttempts, o.releasesFinalizer(), wantAttempts, release)
				}
				ready, _ := readyCondition(p)
				if !release && !strings.Contains(ready.Message, "set deletionPolicy: Orphan to release now") {
					t.Errorf("a kept finalizer must name the way out; Ready message %q", ready.Message)
				}
				prefix := fmt.Sprintf("Warning RestoreSkipped: Restore impossible for %d attempts (", 3)
				var want, got []string
				if release {
					want = []string{prefix}
				}
				for _, e := range rec.got {
					if !strings.Contains(e, c.cause) {
						t.Errorf("RestoreSkipped %q does not name the cause %q", e, c.cause)
					}
					got = append(got, e[:min(len(e), len(prefix))])
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Events (-want +got):\n%s", diff)
				}
			})
		}
	}
}
