package controllers

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/auth"
	"github.com/tenantpolicy/purchase-policy-controller/internal/m365/licensing"
)

// A whole reconciler on fakes: a fake API server (controller-runtime's fake
// client, with the status subresource, the tenantID index and optional
// interceptors), a licensing API of stateful fake tenants, a credential
// source that records what it is given, and a recorder. Reconcile runs every
// real step; only Microsoft and the API server are fakes.

// fakeTenant is one tenant's product policies.
type fakeTenant struct {
	mu     sync.Mutex
	values map[string]string
	writes []string
	// answer, when set, answers a PUT instead of applying it (return
	// handled=false to apply it as usual).
	answer func(id, value string) (item *licensing.Item, err error, handled bool)
}

func newFakeTenant(values map[string]string) *fakeTenant {
	return &fakeTenant{values: values}
}

func (t *fakeTenant) policies() TenantPolicies {
	return fakePolicies{
		listProducts: func(context.Context) ([]licensing.Item, error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			var items []licensing.Item
			for id, v := range t.values {
				items = append(items, licensing.Item{ProductID: id, ProductName: "name of " + id, PolicyValue: v})
			}
			sort.Slice(items, func(i, j int) bool { return items[i].ProductID < items[j].ProductID })
			return items, nil
		},
		setProduct: func(_ context.Context, id, value string) (*licensing.Item, error) {
			t.mu.Lock()
			defer t.mu.Unlock()
			t.writes = append(t.writes, id+"="+value)
			if t.answer != nil {
				if item, err, handled := t.answer(id, value); handled {
					return item, err
				}
			}
			t.values[id] = value
			return &licensing.Item{ProductID: id, PolicyValue: value}, nil
		},
	}
}

func (t *fakeTenant) snapshot() (map[string]string, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	values := make(map[string]string, len(t.values))
	for k, v := range t.values {
		values[k] = v
	}
	return values, append([]string(nil), t.writes...)
}

// fakeAPIs is the PolicyAPI and CredentialSource of a fake cluster: it
// records every tenant ID and credential material the reconciler asks for.
type fakeAPIs struct {
	mu        sync.Mutex
	tenants   map[string]*fakeTenant
	asked     []string
	materials []auth.Material
}

func (f *fakeAPIs) For(tenantID string, _ azcore.TokenCredential) TenantPolicies {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, tenantID)
	t, ok := f.tenants[tenantID]
	if !ok {
		return fakePolicies{} // an unknown tenant lists nothing
	}
	return t.policies()
}

func (f *fakeAPIs) Credential(m auth.Material) (azcore.TokenCredential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.materials = append(f.materials, m)
	return staticToken{}, nil
}

// noDirectory is a DirectoryAPI for policies that do not track subscriptions.
type noDirectory struct{}

func (noDirectory) For(string, azcore.TokenCredential) TenantDirectory { return nil }

type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "t", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// fakeCluster is a reconciler on fakes.
type fakeCluster struct {
	t   *testing.T
	r   *TenantPurchasePolicyReconciler
	c   client.Client
	api *fakeAPIs
	rec *fakeRecorder
	now time.Time
}

// newFakeCluster returns a reconciler on a fake API server holding objs and
// a Secret "app" (key clientSecret) in namespace "ns", talking to tenants.
// funcs intercept the reconciler's calls to the API server.
func newFakeCluster(t *testing.T, tenants map[string]*fakeTenant, funcs interceptor.Funcs, objs ...client.Object) *fakeCluster {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}, Data: map[string][]byte{"clientSecret": []byte("s3cr3t")}}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1.TenantPurchasePolicy{}).
		WithIndex(&v1.TenantPurchasePolicy{}, TenantIDField, indexTenantID).
		WithObjects(append(objs, secret)...).
		Build()
	fc := &fakeCluster{t: t, c: c, api: &fakeAPIs{tenants: tenants}, rec: &fakeRecorder{}, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	wrapped := interceptor.NewClient(c, funcs)
	fc.r = &TenantPurchasePolicyReconciler{
		Client: wrapped, APIReader: wrapped, Recorder: fc.rec,
		Policies: fc.api, Directory: noDirectory{}, Credentials: fc.api,
		Now: func() time.Time { return fc.now },
	}
	return fc
}

// reconcile runs one reconcile of p and returns the policy as stored after it.
func (fc *fakeCluster) reconcile(p *v1.TenantPurchasePolicy) (*v1.TenantPurchasePolicy, error) {
	fc.t.Helper()
	_, err := fc.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}})
	return fc.get(p), err
}

// get returns p as stored, or nil once it is gone.
func (fc *fakeCluster) get(p *v1.TenantPurchasePolicy) *v1.TenantPurchasePolicy {
	fc.t.Helper()
	out := &v1.TenantPurchasePolicy{}
	if err := fc.c.Get(context.Background(), client.ObjectKeyFromObject(p), out); err != nil {
		return nil
	}
	return out
}

// testPolicy is an Enforce policy of tenant in namespace "ns", default
// Disabled, authenticating with Secret "app", without subscription tracking.
func testPolicy(name, tenant string, created time.Time) *v1.TenantPurchasePolicy {
	track := false
	return &v1.TenantPurchasePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Generation: 1, CreationTimestamp: metav1.NewTime(created)},
		Spec: v1.TenantPurchasePolicySpec{TenantID: tenant, TenantPurchasePolicyTemplate: v1.TenantPurchasePolicyTemplate{
			Mode: v1.ModeEnforce, Default: v1.RulePolicy(v1.PolicyDisabled),
			Auth:          v1.Auth{ClientID: "11111111-2222-3333-4444-555555555555", ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}},
			Interval:      metav1.Duration{Duration: time.Hour},
			Subscriptions: v1.SubscriptionTracking{Track: &track},
		}},
		Status: v1.TenantPurchasePolicyStatus{ObservedGeneration: -1},
	}
}

// adoptedValues returns every product's adoptedValue in status.
func adoptedValues(p *v1.TenantPurchasePolicy) map[string]string {
	out := map[string]string{}
	for _, ps := range p.Status.Products {
		out[ps.ProductID] = ps.AdoptedValue
	}
	return out
}
