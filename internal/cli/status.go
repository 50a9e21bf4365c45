package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// status shows every policy and policy set of the cluster from their
// status, as a table or as JSON/YAML, and with -w follows changes through
// watches.

type statusOptions struct {
	output string
	watch  bool
	all    bool
}

func (a *app) statusCommand() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every TenantPurchasePolicy and TenantPurchasePolicySet: tenant, mode, ready, drift, self-service purchases, refund deadlines",
		Long: "status lists the policies and policy sets of every namespace (or of -n NAMESPACE with\n" +
			"--all-namespaces=false): tenant, mode, ready (with the reason when not), drifted products,\n" +
			"self-service subscriptions, the soonest full-refund deadline and the last sync. A set's row sums\n" +
			"its children (tenants, drifted tenants, subscriptions, the soonest deadline of any child); the\n" +
			"children are listed as policies too. -w follows changes through watches.",
		Example: "  kubectl tpp status\n  kubectl tpp status -n m365 -A=false -o yaml\n  kubectl tpp status -w",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.status(cmd.Context(), o) },
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "Output: table, json or yaml.")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "After listing, print every change as it happens (a watch; Ctrl-C to stop).")
	cmd.Flags().BoolVarP(&o.all, "all-namespaces", "A", true, "Every namespace; false: only -n NAMESPACE (or the context's).")
	return cmd
}

// Kinds of rows.
const (
	kindPolicy = "TenantPurchasePolicy"
	kindSet    = "TenantPurchasePolicySet"
)

// policyStatus is one row of status: a policy, or a set.
type policyStatus struct {
	Kind      string  `json:"kind"`
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	TenantID  string  `json:"tenantID,omitempty"`
	Mode      v1.Mode `json:"mode"`
	// Set is the set a policy belongs to (its label), if any.
	Set string `json:"set,omitempty"`
	// Tenants and DriftedTenants are a set's children, and those drifted.
	Tenants        *int32 `json:"tenants,omitempty"`
	DriftedTenants *int32 `json:"driftedTenants,omitempty"`
	Ready          string `json:"ready"`
	// Reason and Message are the Ready condition's when it is not True.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Drifted are a policy's managed products not at their desired value.
	Drifted     []string `json:"drifted,omitempty"`
	SelfService int32    `json:"selfServiceSubscriptions"`
	// FullRefundUntil is the soonest full-refund deadline still ahead.
	FullRefundUntil *time.Time `json:"fullRefundUntil,omitempty"`
	LastSync        *time.Time `json:"lastSyncTime,omitempty"`
	// Event is ADDED, MODIFIED or DELETED in watch mode.
	Event string `json:"event,omitempty"`
}

func (a *app) status(ctx context.Context, o statusOptions) error {
	if o.output != "table" && o.output != "json" && o.output != "yaml" {
		return usageError("-o %q: want table, json or yaml", o.output)
	}
	c, err := a.kube.client()
	if err != nil {
		return err
	}
	var opts []client.ListOption
	where := "the cluster"
	if !o.all {
		ns := a.kube.namespace()
		opts, where = append(opts, client.InNamespace(ns)), "namespace "+ns
	}
	var policies v1.TenantPurchasePolicyList
	if err := c.List(ctx, &policies, opts...); err != nil {
		return &clusterError{what: "listing TenantPurchasePolicies in " + where, err: err}
	}
	var sets v1.TenantPurchasePolicySetList
	if err := c.List(ctx, &sets, opts...); err != nil {
		return &clusterError{what: "listing TenantPurchasePolicySets in " + where, err: err}
	}
	now := time.Now()
	rows := make([]policyStatus, 0, len(sets.Items)+len(policies.Items))
	for i := range sets.Items {
		rows = append(rows, setStatusOf(&sets.Items[i], now))
	}
	for i := range policies.Items {
		rows = append(rows, statusOf(&policies.Items[i], now))
	}
	sort.SliceStable(rows, func(i, j int) bool {
		return rows[i].Namespace+"/"+rows[i].Name < rows[j].Namespace+"/"+rows[j].Name
	})
	out := newStatusWriter(a.streams.Out, o.output, o.watch, now)
	if err := out.list(rows); err != nil {
		return err
	}
	if !o.watch {
		return nil
	}
	return a.watchStatus(ctx, c, policies.ResourceVersion, sets.ResourceVersion, opts, out)
}

// watchStatus prints a row per change of a policy or a set until ctx ends.
// Each watch resumes from its last resourceVersion when the API server
// closes it.
func (a *app) watchStatus(ctx context.Context, c client.WithWatch, policiesRV, setsRV string, opts []client.ListOption, out *statusWriter) error {
	pw, err := watchtools.NewRetryWatcherWithContext(ctx, policiesRV, kindWatcher{c: c, list: &v1.TenantPurchasePolicyList{}, opts: opts})
	if err != nil {
		return &clusterError{what: "watching TenantPurchasePolicies", err: err}
	}
	defer pw.Stop()
	sw, err := watchtools.NewRetryWatcherWithContext(ctx, setsRV, kindWatcher{c: c, list: &v1.TenantPurchasePolicySetList{}, opts: opts})
	if err != nil {
		return &clusterError{what: "watching TenantPurchasePolicySets", err: err}
	}
	defer sw.Stop()
	for {
		var (
			ev watch.Event
			ok bool
		)
		select {
		case <-ctx.Done():
			return nil
		case ev, ok = <-pw.ResultChan():
		case ev, ok = <-sw.ResultChan():
		}
		if !ok {
			return nil
		}
		if ev.Type == watch.Error {
			return &clusterError{what: "watching TenantPurchasePolicies and TenantPurchasePolicySets", err: apierrors.FromObject(ev.Object)}
		}
		var row policyStatus
		switch o := ev.Object.(type) {
		case *v1.TenantPurchasePolicy:
			row = statusOf(o, time.Now())
		case *v1.TenantPurchasePolicySet:
			row = setStatusOf(o, time.Now())
		default:
			return &clusterError{what: "watching TenantPurchasePolicies and TenantPurchasePolicySets", err: fmt.Errorf("%v", ev.Object)}
		}
		row.Event = string(ev.Type)
		if err := out.row(row); err != nil {
			return err
		}
	}
}

// kindWatcher watches one kind's list for watchtools' RetryWatcher.
type kindWatcher struct {
	c    client.WithWatch
	list client.ObjectList
	opts []client.ListOption
}

func (k kindWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return k.c.Watch(ctx, k.list.DeepCopyObject().(client.ObjectList), append(append([]client.ListOption{}, k.opts...), &client.ListOptions{Raw: &o})...)
}

// statusOf reads one policy's row from its status.
func statusOf(p *v1.TenantPurchasePolicy, now time.Time) policyStatus {
	row := policyStatus{Kind: kindPolicy, Namespace: p.Namespace, Name: p.Name, TenantID: p.Spec.TenantID, Mode: p.Spec.Mode,
		Set: p.Labels[v1.SetLabel], Drifted: []string{}, SelfService: p.Status.Summary.SelfServiceSubscriptions}
	row.ready(p.Status.Conditions)
	for _, ps := range p.Status.Products {
		if ps.Desired != "" && string(ps.Desired) != ps.Observed {
			row.Drifted = append(row.Drifted, ps.ProductID)
		}
	}
	if s := p.Status.Subscriptions; s != nil {
		for _, sub := range s.SelfService {
			if t := sub.FullRefundUntil; t != nil && t.After(now) && sub.Status != "Deleted" && (row.FullRefundUntil == nil || t.Time.Before(*row.FullRefundUntil)) {
				u := t.Time
				row.FullRefundUntil = &u
			}
		}
	}
	if t := p.Status.LastSyncTime; t != nil {
		u := t.Time
		row.LastSync = &u
	}
	return row
}

// setStatusOf reads one set's row from its status: its children summed.
func setStatusOf(set *v1.TenantPurchasePolicySet, now time.Time) policyStatus {
	sum := set.Status.Summary
	row := policyStatus{Kind: kindSet, Namespace: set.Namespace, Name: set.Name, Mode: set.Spec.Template.Mode,
		Tenants: &sum.Tenants, DriftedTenants: &sum.Drifted, SelfService: sum.SelfServiceSubscriptions}
	row.ready(set.Status.Conditions)
	if d := set.Status.NextFullRefundDeadline; d != nil && d.FullRefundUntil.After(now) {
		u := d.FullRefundUntil.Time
		row.FullRefundUntil = &u
	}
	if d := set.Status.Discovery; d != nil && d.LastDiscoveryTime != nil {
		u := d.LastDiscoveryTime.Time
		row.LastSync = &u
	}
	return row
}

// ready fills Ready (and its reason and message when it is not True).
func (r *policyStatus) ready(conds []metav1.Condition) {
	r.Ready = "Unknown"
	if c := meta.FindStatusCondition(conds, v1.ReadyCondition); c != nil {
		r.Ready = string(c.Status)
		if c.Status != metav1.ConditionTrue {
			r.Reason, r.Message = c.Reason, c.Message
		}
	}
}

// statusWriter prints rows as a table (aligned over the first list; watch
// rows follow in the same columns), JSON (one document, or one line per
// event when watching) or YAML.
type statusWriter struct {
	w      io.Writer
	output string
	watch  bool
	now    time.Time
	widths []int
}

func newStatusWriter(w io.Writer, output string, watch bool, now time.Time) *statusWriter {
	return &statusWriter{w: w, output: output, watch: watch, now: now}
}

var statusHeader = []string{"NAMESPACE", "NAME", "TENANT", "MODE", "READY", "DRIFTED", "SELF-SERVICE", "FULL REFUND UNTIL", "LAST SYNC"}

// tableName is the NAME cell: kubectl's short kind for a set (tpps/NAME),
// the bare name for a policy.
func (r policyStatus) tableName() string {
	if r.Kind == kindSet {
		return "tpps/" + r.Name
	}
	return r.Name
}

func (s *statusWriter) list(rows []policyStatus) error {
	switch {
	case s.output == "json" && s.watch:
		for _, r := range rows {
			if err := s.row(r); err != nil {
				return err
			}
		}
		return nil
	case s.output == "json":
		enc := json.NewEncoder(s.w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"items": rows})
	case s.output == "yaml":
		for _, r := range rows {
			if err := s.row(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 && !s.watch {
		_, err := fmt.Fprintln(s.w, "No TenantPurchasePolicy or TenantPurchasePolicySet found.")
		return err
	}
	cells := [][]string{s.header()}
	for _, r := range rows {
		cells = append(cells, s.cells(r))
	}
	s.widths = make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			s.widths[i] = max(s.widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range cells {
		if err := s.print(row); err != nil {
			return err
		}
	}
	return nil
}

func (s *statusWriter) row(r policyStatus) error {
	switch s.output {
	case "json":
		return json.NewEncoder(s.w).Encode(r)
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.w, "---\n%s", b)
		return err
	}
	return s.print(s.cells(r))
}

func (s *statusWriter) header() []string {
	if s.watch {
		return append([]string{"EVENT"}, statusHeader...)
	}
	return statusHeader
}

func (s *statusWriter) cells(r policyStatus) []string {
	ready := r.Ready
	if r.Reason != "" {
		ready += " (" + r.Reason + ")"
	}
	refund, sync := "-", "never"
	if r.Kind == kindSet {
		sync = "-" // a set syncs nothing itself; its time is discovery's
	}
	if r.FullRefundUntil != nil {
		refund = r.FullRefundUntil.UTC().Format(time.RFC3339) + " (in " + shortDuration(r.FullRefundUntil.Sub(s.now)) + ")"
	}
	if r.LastSync != nil {
		sync = shortDuration(s.now.Sub(*r.LastSync)) + " ago"
	}
	tenant, drifted := r.TenantID, fmt.Sprint(len(r.Drifted))
	if n := len(r.Drifted); n > 0 {
		drifted += " (" + strings.Join(r.Drifted[:min(n, 3)], ",") + map[bool]string{true: ",…", false: ""}[n > 3] + ")"
	}
	if r.Kind == kindSet {
		tenant = fmt.Sprintf("%d %s", ptr.Deref(r.Tenants, 0), plural(int(ptr.Deref(r.Tenants, 0)), "tenant", "tenants"))
		drifted = fmt.Sprintf("%d %s", ptr.Deref(r.DriftedTenants, 0), plural(int(ptr.Deref(r.DriftedTenants, 0)), "tenant", "tenants"))
	}
	cells := []string{r.Namespace, r.tableName(), tenant, string(r.Mode), ready, drifted, fmt.Sprint(r.SelfService), refund, sync}
	if s.watch {
		cells = append([]string{firstNonEmpty(r.Event, "LISTED")}, cells...)
	}
	return cells
}

// print writes one table row in the columns of the first list.
func (s *statusWriter) print(cells []string) error {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(c + "\n")
			break
		}
		width := utf8.RuneCountInString(c)
		if i < len(s.widths) {
			width = max(width, s.widths[i])
		}
		b.WriteString(c + strings.Repeat(" ", width-utf8.RuneCountInString(c)+3))
	}
	_, err := io.WriteString(s.w, b.String())
	return err
}

// shortDuration is kubectl's style: 45s, 12m, 3h5m, 2d4h.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
