package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// TestAdoptionValuesSurviveALostStatusWrite: the first run's status write
// loses a conflict (a GitOps tool wrote the object) right after the PUTs.
// The adoption values were recorded before the first PUT, so the next run
// still holds the tenant's original values, the Adopted Event was sent once,
// and Restore on deletion puts the original values back, not the policy's.
func TestAdoptionValuesSurviveALostStatusWrite(t *testing.T) {
	original := map[string]string{"A": "Enabled", "B": "Disabled", "C": "OnlyTrialsWithoutPaymentMethod"}
	tenant := newFakeTenant(map[string]string{"A": "Enabled", "B": "Disabled", "C": "OnlyTrialsWithoutPaymentMethod"})
	p := testPolicy("contoso", tenantLower, time.Now())
	p.Spec.DeletionPolicy = v1.DeletionRestore

	conflicts := 0
	funcs := interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		if _, writes := tenant.snapshot(); len(writes) > 0 && conflicts == 0 {
			conflicts++
			return apierrors.NewConflict(schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "tenantpurchasepolicies"}, obj.GetName(),
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}}
	fc := newFakeCluster(t, map[string]*fakeTenant{tenantLower: tenant}, funcs, p)
	var atFirstWrite map[string]string
	tenant.answer = func(string, string) (*licensing.Item, error, bool) {
		if atFirstWrite == nil {
			atFirstWrite = adoptedValues(fc.get(p))
		}
		return nil, nil, false
	}

	if _, err := fc.reconcile(p); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if conflicts != 1 {
		t.Fatalf("the status write after the PUTs was not refused (%d conflicts): the test proves nothing", conflicts)
	}
	if !cmp.Equal(atFirstWrite, original) {
		t.Errorf("at the first PUT the API server held adoption values %v, want %v", atFirstWrite, original)
	}
	if values, _ := tenant.snapshot(); values["A"] != "Disabled" || values["C"] != "Disabled" {
		t.Fatalf("the first run did not write: %v", values)
	}

	got, err := fc.reconcile(p)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if diff := cmp.Diff(original, adoptedValues(got)); diff != "" {
		t.Errorf("after the lost write, adoption values (-tenant's original +recorded):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Normal Adopted: adopted 3 products of tenant " + tenantLower + "; 2 differed from the policy: A, C"}, fc.events(v1.EventAdopted)); diff != "" {
		t.Errorf("Adopted Events (-want +got):\n%s", diff)
	}

	if err := fc.c.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.reconcile(p); err != nil {
		t.Fatalf("deletion: %v", err)
	}
	if values, _ := tenant.snapshot(); !cmp.Equal(values, original) {
		t.Errorf("Restore left the tenant at %v, want its original values %v", values, original)
	}
	if fc.get(p) != nil {
		t.Errorf("the finalizer was not released after Restore")
	}
}

// TestAdoptionSnapshotOnlyBeforeAWrite keeps the request floor of status
// writes: a policy that adopts without writing (Observe mode, nothing
// differs) writes status once per run, as every run does.
func TestAdoptionSnapshotOnlyBeforeAWrite(t *testing.T) {
	cases := map[string]struct {
		mode   v1.Mode
		tenant map[string]string
	}{
		"Observe":         {mode: v1.ModeObserve, tenant: map[string]string{"A": "Enabled"}},
		"nothing differs": {mode: v1.ModeEnforce, tenant: map[string]string{"A": "Disabled"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := testPolicy("contoso", tenantLower, time.Now())
			p.Spec.Mode = tc.mode
			writes := 0
			funcs := interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				writes++
				return c.SubResource(sub).Update(ctx, obj, opts...)
			}}
			fc := newFakeCluster(t, map[string]*fakeTenant{tenantLower: newFakeTenant(tc.tenant)}, funcs, p)
			got, err := fc.reconcile(p)
			if err != nil {
				t.Fatal(err)
			}
			if writes != 1 {
				t.Errorf("%d status writes in the adopting run, want 1", writes)
			}
			if adoptedValues(got)["A"] != tc.tenant["A"] {
				t.Errorf("adoption not recorded: %+v", got.Status.Products)
			}
		})
	}
}
