package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// progressEvery is how often a long wait prints how far it got.
const progressEvery = 15 * time.Second

// tracker watches the fleet's policies through an informer (one watch, no
// polling) and tells waiters when policies reach a state. It decodes and
// keeps only what the waits read (trackedPolicy).
type tracker struct {
	cache cache.Cache

	mu      sync.Mutex
	objs    map[string]*v1.TenantPurchasePolicy
	waiters map[*waiter]struct{}
}

// waiter waits for a set of policies, each for its own condition.
type waiter struct {
	pending map[string]func(*v1.TenantPurchasePolicy) bool
	doneAt  map[string]time.Time
	done    chan struct{}
	// since is when the wait began (watch, before the phase's writes): the
	// clock of its progress lines, as of the phase's wall time.
	since time.Time
}

// startTracker starts an informer on the policies of ns.
func startTracker(ctx context.Context, cfg *rest.Config, ns string) (*tracker, error) {
	scheme := runtime.NewScheme()
	gv := v1.GroupVersion
	scheme.AddKnownTypeWithName(gv.WithKind("TenantPurchasePolicy"), &trackedPolicy{})
	scheme.AddKnownTypeWithName(gv.WithKind("TenantPurchasePolicyList"), &trackedPolicyList{})
	metav1.AddToGroupVersion(scheme, gv)
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		return nil, err
	}
	t := &tracker{cache: c, objs: map[string]*v1.TenantPurchasePolicy{}, waiters: map[*waiter]struct{}{}}
	inf, err := c.GetInformer(ctx, &trackedPolicy{})
	if err != nil {
		return nil, err
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observe(o) },
		UpdateFunc: func(_, o any) { t.observe(o) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the policy informer did not sync")
	}
	return t, nil
}

// trackedPolicy is a policy as the tracker decodes it: only what the waits
// read (name, generation, the conditions, the handled reconcile-now value,
// the summary and the counters). The decoder skips the rest of each watch
// event, so the harness, whose CPU shares the cores with what it measures,
// does not build every product entry of every policy twice a phase.
type trackedPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            struct {
		ObservedGeneration     int64              `json:"observedGeneration"`
		Conditions             []metav1.Condition `json:"conditions,omitempty"`
		LastHandledReconcileAt string             `json:"lastHandledReconcileAt,omitempty"`
		Summary                v1.Summary         `json:"summary,omitempty"`
		Counters               v1.Counters        `json:"counters,omitempty"`
	} `json:"status,omitempty"`
}

func (p *trackedPolicy) DeepCopyObject() runtime.Object {
	c := *p
	p.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Status.Conditions = slices.Clone(p.Status.Conditions)
	return &c
}

type trackedPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []trackedPolicy `json:"items"`
}

func (l *trackedPolicyList) DeepCopyObject() runtime.Object {
	c := *l
	c.Items = make([]trackedPolicy, len(l.Items))
	for i := range l.Items {
		c.Items[i] = *l.Items[i].DeepCopyObject().(*trackedPolicy)
	}
	return &c
}

// slim is the tracked state as a policy: what the waits are written against.
func (p *trackedPolicy) slim() *v1.TenantPurchasePolicy {
	s := &v1.TenantPurchasePolicy{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace,
		Generation: p.Generation, ResourceVersion: p.ResourceVersion, DeletionTimestamp: p.DeletionTimestamp}}
	s.Status.ObservedGeneration = p.Status.ObservedGeneration
	if c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition); c != nil {
		s.Status.Conditions = []metav1.Condition{*c}
	}
	s.Status.LastHandledReconcileAt = p.Status.LastHandledReconcileAt
	s.Status.Summary = p.Status.Summary
	s.Status.Counters = p.Status.Counters
	return s
}

// observe records a policy's new state and tells the waiters.
func (t *tracker) observe(o any) {
	tp, ok := o.(*trackedPolicy)
	if !ok {
		return
	}
	p := tp.slim()
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.objs[p.Name] = p
	for w := range t.waiters {
		w.check(p, now)
	}
}

func (w *waiter) check(p *v1.TenantPurchasePolicy, now time.Time) {
	cond, ok := w.pending[p.Name]
	if !ok || !cond(p) {
		return
	}
	delete(w.pending, p.Name)
	w.doneAt[p.Name] = now
	if len(w.pending) == 0 {
		close(w.done)
	}
}

// watch starts waiting for each named policy to meet its condition; policies
// that meet it already are done at once.
func (t *tracker) watch(conds map[string]func(*v1.TenantPurchasePolicy) bool) *waiter {
	now := time.Now()
	w := &waiter{pending: map[string]func(*v1.TenantPurchasePolicy) bool{}, doneAt: map[string]time.Time{}, done: make(chan struct{}), since: now}
	for name, c := range conds {
		w.pending[name] = c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(w.pending) == 0 {
		close(w.done)
		return w
	}
	t.waiters[w] = struct{}{}
	for name := range conds {
		if p, ok := t.objs[name]; ok {
			w.check(p, now)
		}
	}
	return w
}

// recheck evaluates a policy's current state against w again (after the
// condition's inputs changed outside the watch).
func (t *tracker) recheck(w *waiter, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.objs[name]; ok {
		w.check(p, time.Now())
	}
}

// wait blocks until every policy of w met its condition, printing progress
// for long waits; it fails after timeout, when ctx ends or when alive
// reports an error (a child died).
func (t *tracker) wait(ctx context.Context, w *waiter, label string, total int, timeout time.Duration, alive func() error) (map[string]time.Time, error) {
	defer func() {
		t.mu.Lock()
		delete(t.waiters, w)
		t.mu.Unlock()
	}()
	start := w.since
	deadline := time.After(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastProgress := start
	for {
		select {
		case <-w.done:
			return t.doneTimes(w), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("%s: %d of %d policies not done after %s", label, t.pendingCount(w), total, timeout)
		case now := <-tick.C:
			if err := alive(); err != nil {
				return nil, err
			}
			if now.Sub(lastProgress) >= progressEvery {
				lastProgress = now
				done := total - t.pendingCount(w)
				fmt.Printf("  %s: %d/%d after %s (%.1f/s)\n", label, done, total, now.Sub(start).Round(time.Second), float64(done)/now.Sub(start).Seconds())
			}
		}
	}
}

func (t *tracker) pendingCount(w *waiter) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(w.pending)
}

func (t *tracker) doneTimes(w *waiter) map[string]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]time.Time, len(w.doneAt))
	for k, v := range w.doneAt {
		out[k] = v
	}
	return out
}

// get returns the slim copy of a policy.
func (t *tracker) get(name string) (*v1.TenantPurchasePolicy, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.objs[name]
	return p, ok
}

// readyFor reports whether the controller has handled p's generation and
// found it Ready.
func readyFor(p *v1.TenantPurchasePolicy, generation int64) bool {
	if p.Generation < generation || p.Status.ObservedGeneration != p.Generation {
		return false
	}
	c := apimeta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && (c.ObservedGeneration == 0 || c.ObservedGeneration == p.Generation)
}
