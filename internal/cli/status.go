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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/tenantpolicy/purchase-policy-controller/api/v1alpha1"
)

// status shows every policy of the cluster from its status, as a table or
// as JSON/YAML, and with -w follows changes through a watch.

type statusOptions struct {
	output string
	watch  bool
	all    bool
}

func (a *app) statusCommand() *cobra.Command {
	var o statusOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every TenantPurchasePolicy: tenant, mode, ready, drift, self-service purchases, refund deadlines",
		Long: "status lists the policies of every namespace (or of -n NAMESPACE with --all-namespaces=false):\n" +
			"tenant, mode, ready (with the reason when not), drifted products, self-service subscriptions, the\n" +
			"soonest full-refund deadline and the last sync. -w follows changes through a watch.",
		Example: "  kubectl tpp status\n  kubectl tpp status -n m365 -A=false -o yaml\n  kubectl tpp status -w",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.status(cmd.Context(), o) },
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "Output: table, json or yaml.")
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "After listing, print every change as it happens (a watch; Ctrl-C to stop).")
	cmd.Flags().BoolVarP(&o.all, "all-namespaces", "A", true, "Every namespace; false: only -n NAMESPACE (or the context's).")
	return cmd
}

// policyStatus is one row of status.
type policyStatus struct {
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	TenantID  string  `json:"tenantID"`
	Mode      v1.Mode `json:"mode"`
	Ready     string  `json:"ready"`
	// Reason and Message are the Ready condition's when it is not True.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Drifted are the managed products not at their desired value.
	Drifted     []string `json:"drifted"`
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
	var list v1.TenantPurchasePolicyList
	if err := c.List(ctx, &list, opts...); err != nil {
		return &clusterError{what: "listing TenantPurchasePolicies in " + where, err: err}
	}
	now := time.Now()
	rows := make([]policyStatus, 0, len(list.Items))
	for i := range list.Items {
		rows = append(rows, statusOf(&list.Items[i], now))
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Namespace+"/"+rows[i].Name < rows[j].Namespace+"/"+rows[j].Name
	})
	out := newStatusWriter(a.streams.Out, o.output, o.watch, now)
	if err := out.list(rows); err != nil {
		return err
	}
	if !o.watch {
		return nil
	}
	return a.watchStatus(ctx, c, list.ResourceVersion, opts, out)
}

// watchStatus prints a row per change until ctx ends. It resumes the watch
// from the last resourceVersion when the API server closes it.
func (a *app) watchStatus(ctx context.Context, c client.WithWatch, rv string, opts []client.ListOption, out *statusWriter) error {
	w, err := watchtools.NewRetryWatcherWithContext(ctx, rv, policyWatcher{c: c, opts: opts})
	if err != nil {
		return &clusterError{what: "watching TenantPurchasePolicies", err: err}
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			p, isPolicy := ev.Object.(*v1.TenantPurchasePolicy)
			if ev.Type == watch.Error || !isPolicy {
				return &clusterError{what: "watching TenantPurchasePolicies", err: fmt.Errorf("%v", ev.Object)}
			}
			row := statusOf(p, time.Now())
			row.Event = string(ev.Type)
			if err := out.row(row); err != nil {
				return err
			}
		}
	}
}

// policyWatcher watches policies for watchtools' RetryWatcher.
type policyWatcher struct {
	c    client.WithWatch
	opts []client.ListOption
}

func (p policyWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	return p.c.Watch(ctx, &v1.TenantPurchasePolicyList{}, append(append([]client.ListOption{}, p.opts...), &client.ListOptions{Raw: &o})...)
}

// statusOf reads one policy's row from its status.
func statusOf(p *v1.TenantPurchasePolicy, now time.Time) policyStatus {
	row := policyStatus{Namespace: p.Namespace, Name: p.Name, TenantID: p.Spec.TenantID, Mode: p.Spec.Mode,
		Ready: "Unknown", Drifted: []string{}, SelfService: p.Status.Summary.SelfServiceSubscriptions}
	if c := meta.FindStatusCondition(p.Status.Conditions, v1.ReadyCondition); c != nil {
		row.Ready = string(c.Status)
		if c.Status != metav1.ConditionTrue {
			row.Reason, row.Message = c.Reason, c.Message
		}
	}
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
		return enc.Encode(map[string]any{"policies": rows})
	case s.output == "yaml":
		for _, r := range rows {
			if err := s.row(r); err != nil {
				return err
			}
		}
		return nil
	}
	if len(rows) == 0 && !s.watch {
		_, err := fmt.Fprintln(s.w, "No TenantPurchasePolicy found.")
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
	if r.FullRefundUntil != nil {
		refund = r.FullRefundUntil.UTC().Format(time.RFC3339) + " (in " + shortDuration(r.FullRefundUntil.Sub(s.now)) + ")"
	}
	if r.LastSync != nil {
		sync = shortDuration(s.now.Sub(*r.LastSync)) + " ago"
	}
	drifted := fmt.Sprint(len(r.Drifted))
	if n := len(r.Drifted); n > 0 {
		drifted += " (" + strings.Join(r.Drifted[:min(n, 3)], ",") + map[bool]string{true: ",…", false: ""}[n > 3] + ")"
	}
	cells := []string{r.Namespace, r.Name, r.TenantID, string(r.Mode), ready, drifted, fmt.Sprint(r.SelfService), refund, sync}
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
