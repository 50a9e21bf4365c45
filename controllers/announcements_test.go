package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// fixedDirectory answers every tenant with one directory.
type fixedDirectory struct{ d TenantDirectory }

func (f fixedDirectory) For(string, azcore.TokenCredential) TenantDirectory { return f.d }

// TestPurchaseAnnouncedOnceAcrossALostStatusWrite: a user's purchase is
// told once, even when the controller dies right after the status write
// that records it (the recorder's asynchronous post would be lost with the
// process) or loses that write (the run is repeated and detects the
// purchase again). The Event is in the API server before the status write,
// and the repeated run creates no second one.
func TestPurchaseAnnouncedOnceAcrossALostStatusWrite(t *testing.T) {
	tenant := newFakeTenant(map[string]string{"A": "Disabled"})
	p := testPolicy("contoso", tenantLower, time.Now())
	p.Spec.Subscriptions.Track = nil
	var fc *fakeCluster
	writes, atFirstWrite := 0, -1
	funcs := interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
		if writes++; writes == 1 {
			atFirstWrite = len(fc.events(v1.EventSelfServicePurchase))
			return apierrors.NewConflict(schema.GroupResource{Group: v1.GroupVersion.Group, Resource: "tenantpurchasepolicies"}, obj.GetName(),
				errors.New("the object has been modified; please apply your changes to the latest version and try again"))
		}
		return c.SubResource(sub).Update(ctx, obj, opts...)
	}}
	fc = newFakeCluster(t, map[string]*fakeTenant{tenantLower: tenant}, funcs, p)
	fc.r.Directory = fixedDirectory{steady.directory()}

	if _, err := fc.reconcile(p); err != nil {
		t.Fatalf("first run: %v", err)
	}
	if atFirstWrite != 1 {
		t.Errorf("at the status write recording the purchase, %d SelfServicePurchase Events were in the API server, want 1: a crash right after the write loses it", atFirstWrite)
	}
	for run := 2; run <= 3; run++ {
		if _, err := fc.reconcile(p); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	got := fc.get(p)
	if got.Status.Subscriptions == nil || len(got.Status.Subscriptions.SelfService) != 1 {
		t.Fatalf("the purchase is not recorded: %+v", got.Status.Subscriptions)
	}
	ev := fc.events(v1.EventSelfServicePurchase)
	if len(ev) != 1 || !strings.Contains(ev[0], "user "+erinID+" bought 1 Microsoft_365_Copilot seat(s)") {
		t.Errorf("SelfServicePurchase Events after a lost status write and two more runs: %q, want erin's purchase once", ev)
	}
	var list eventsv1.EventList
	if err := fc.c.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.UID != p.UID || e.Regarding.Kind != "TenantPurchasePolicy" || e.ReportingController != reportingController ||
			e.ReportingInstance == "" || e.Action == "" || e.EventTime.IsZero() {
			t.Errorf("announcement %s lacks what the events API requires or names another object: %+v", e.Name, e)
		}
	}
}

// TestAnnouncementNameIsValid: the Event of a policy with the longest name
// the API server allows, cut where a '-' ends the kept part, is still a
// name the API server accepts.
func TestAnnouncementNameIsValid(t *testing.T) {
	p := testPolicy(strings.Repeat("a", 235)+"-"+strings.Repeat("b", 17), tenantLower, time.Now())
	name := announcementEvent(&syncState{policy: p}, announcement{eventNote{eventNormal, v1.EventAdopted, "n"}, "products"}).Name
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		t.Errorf("announcement name %q: %v", name, errs)
	}
}
