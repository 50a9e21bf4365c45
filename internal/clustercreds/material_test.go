package clustercreds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// TestSharedSecretReads: policies that share a partner's Secret and run at
// once read it with one GET between them, each getting the value; a read
// that starts after that GET answered sends its own, so a rotated Secret
// takes effect at the next run. Without SharedReads every read is a GET.
func TestSharedSecretReads(t *testing.T) {
	const callers = 8
	auth := v1.Auth{ClientID: "11111111-2222-3333-4444-555555555555", ClientSecretRef: &v1.SecretKeyRef{Name: "app", Key: "clientSecret"}}
	// readAll makes callers concurrent reads while GETs block, then counts
	// the GETs sent once every caller waits (synctest.Wait), and lets them go.
	readAll := func(t *testing.T, l func(client.Reader) Loader, value string) (values []string, gets int32) {
		synctest.Test(t, func(t *testing.T) {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "partner", Name: "app"}, Data: map[string][]byte{"clientSecret": []byte(value)}}
			var sent atomic.Int32
			release := make(chan struct{})
			reader := fake.NewClientBuilder().WithObjects(secret).WithInterceptorFuncs(interceptor.Funcs{
				Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					sent.Add(1)
					<-release
					return c.Get(ctx, key, obj, opts...)
				},
			}).Build()
			loader := l(reader)
			values = make([]string, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					m, err := loader.Material(context.Background(), "partner", "72f988bf-86f1-41af-91ab-2d7cd011db47", auth)
					if err != nil {
						t.Error(err)
					}
					values[i] = m.ClientSecret
				})
			}
			synctest.Wait()
			gets = sent.Load()
			close(release)
			wg.Wait()
		})
		return values, gets
	}

	group := &singleflight.Group{}
	shared := func(r client.Reader) Loader { return Loader{Reader: r, SharedReads: group} }
	for _, value := range []string{"first", "rotated"} {
		values, gets := readAll(t, shared, value)
		if gets != 1 {
			t.Errorf("%d concurrent reads of one Secret sent %d GETs, want 1 shared", callers, gets)
		}
		for i, v := range values {
			if v != value {
				t.Errorf("caller %d read %q, want %q: a read after the shared one must send its own GET", i, v, value)
			}
		}
	}
	if _, gets := readAll(t, func(r client.Reader) Loader { return Loader{Reader: r} }, "x"); gets != callers {
		t.Errorf("without SharedReads: %d GETs for %d reads, want one each", gets, callers)
	}
}
