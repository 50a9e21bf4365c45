package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a run measured; it is printed as a table and written
// as JSON.
type report struct {
	Date       time.Time      `json:"date"`
	Command    string         `json:"command"`
	Machine    *machine       `json:"machine,omitempty"`
	Tenants    int            `json:"tenants"`
	Simulator  string         `json:"simulator"`
	APIServer  string         `json:"apiServerExtraFlags"`
	Controller controllerArgs `json:"controller"`
	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute figures when the
	// phases began and when the run ended: other work on the machine slows
	// what is CPU-bound (the ceiling above all).
	LoadAverage [2]string `json:"loadAverage"`
	Ceiling     *ceiling  `json:"ceiling"`
	// Objects sizes the fleet's policies after the cold phase.
	Objects *objectSizes       `json:"policyObjects,omitempty"`
	Phases  []*phase           `json:"phases"`
	Soak    *soakResult        `json:"soak,omitempty"`
	PeakRSS map[string]float64 `json:"peakRSSMiB"`
}

// machine describes where a result was measured.
type machine struct {
	CPUs      int    `json:"nproc"`
	CPUModel  string `json:"cpuModel"`
	MemoryMiB int64  `json:"memoryMiB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
	Commit    string `json:"gitCommit"`
}

// finish measures the ceiling (which stops the controller), then prints
// the table and writes the JSON files.
func (b *bench) finish(ctx context.Context, command string) error {
	b.rep.Date, b.rep.Command, b.rep.APIServer = time.Now().UTC(), command, b.cp.apiserverArgs()
	b.rep.PeakRSS = b.peakRSS()
	if err := b.measureCeiling(ctx); err != nil {
		return err
	}
	b.rep.LoadAverage[1] = loadAverage()
	b.printTable(b.out)
	if b.o.jsonPath != "" {
		if err := writeReport(b.o.jsonPath, &b.rep); err != nil {
			return err
		}
	}
	if !b.o.results {
		return nil
	}
	b.rep.Machine = describeMachine()
	b.rep.Machine.Commit = b.commit
	path := filepath.Join(b.root, "hack", "bench", "results", fmt.Sprintf("%s-N%d.json", b.rep.Date.Format("2006-01-02"), b.o.tenants))
	if err := writeReport(path, &b.rep); err != nil {
		return err
	}
	b.say("\nwrote %s", path)
	return nil
}

// processNames are the processes of a run, in report order.
var processNames = []string{"controller", "kube-apiserver", "etcd", "m365sim", "harness"}

// processes are the PIDs of every process of the run by name.
func (b *bench) processes() map[string]int {
	pids := childrenNamed("kube-apiserver", "etcd")
	pids["controller"], pids["m365sim"], pids["harness"] = b.ctrl.Pid(), b.sim.proc.Pid(), os.Getpid()
	return pids
}

// processCPU reads the CPU seconds of every process of the run.
func (b *bench) processCPU() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range b.processes() {
		if c, err := cpuSeconds(pid); err == nil {
			out[name] = c
		}
	}
	return out
}

// peakRSS reads the peak RSS of every process of the run, in MiB.
func (b *bench) peakRSS() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range b.processes() {
		if rss, err := peakRSS(pid); err == nil {
			out[name] = mib(rss)
		}
	}
	return out
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func writeReport(path string, r *report) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// printTable prints the report for a person.
func (b *bench) printTable(out io.Writer) {
	r := &b.rep
	fmt.Fprintf(out, "\n== bench: %d tenants (one partner app, one Secret) ==\n", r.Tenants)
	fmt.Fprintf(out, "simulator:  %s\n", r.Simulator)
	fmt.Fprintf(out, "controller: %s\n", strings.Join(r.Controller.Args, " "))
	for _, c := range r.Controller.Changes {
		fmt.Fprintf(out, "            %s\n", c)
	}
	fmt.Fprintf(out, "load:       %s at the start, %s at the end (1, 5, 15 min; %d cores)\n", r.LoadAverage[0], r.LoadAverage[1], goruntime.NumCPU())
	if c := r.Ceiling; c != nil {
		fmt.Fprintf(out, "ceiling:    %.0f creates/s, %.0f status patches/s (plain client, no client-side rate limit, %d at a time = --%s)\n",
			c.CreatesPerSecond, c.StatusPatchesPerSec, c.Concurrency, concurrencyFlag)
		if c.SmallStatusPatchesPerSec > 0 {
			fmt.Fprintf(out, "            the same status patch on a policy with an empty status: %.0f/s\n", c.SmallStatusPatchesPerSec)
		}
		if c.StatusUpdatesPerSec > 0 {
			fmt.Fprintf(out, "            a status update (the controller's write) instead of the patch: %.0f/s\n", c.StatusUpdatesPerSec)
		}
	}
	if o := r.Objects; o != nil {
		fmt.Fprintf(out, "policy:     %.1f KiB as stored after cold (status %.1f KiB, managedFields %.1f KiB), mean of %d\n",
			kib(o.MeanBytes), kib(o.MeanStatusBytes), kib(o.MeanManagedFieldsBytes), o.Policies)
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tpolicies\twall\tpolicies/s\tof ceiling\treconciles\tMS req/floor\ttokens\t429s\tearly\tCPU s/1k rec\tpeak RSS MiB\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.1f%%\t%d\t%.2f\t%d/%d\t%d\t%d\t%.1f\t%.0f\t\n", p.Name, p.Policies,
			(time.Duration(p.WallSeconds * float64(time.Second))).Round(100*time.Millisecond), p.PoliciesPerSecond, 100*p.FractionOfCeiling,
			p.Reconciles, p.Microsoft.Ratio, p.Microsoft.Requests[keyToken], p.Microsoft.Floor[keyToken],
			p.Microsoft.Throttled, p.Microsoft.Early, p.CPUPer1000, mib(p.PeakRSSBytes))
	}
	_ = tw.Flush()
	for _, p := range r.Phases {
		if l := p.Latency; l != nil {
			fmt.Fprintf(out, "\nspec change -> Ready (%d changes at %.0f/s): p50 %.2fs, p99 %.2fs, max %.2fs\n",
				l.Samples, l.RatePerSec, l.P50Seconds, l.P99Seconds, l.MaxSeconds)
		}
	}
	b.printMicrosoft(out)
	b.printAPIServer(out)
	b.printCPU(out)
	fmt.Fprintf(out, "\npeak RSS (MiB):")
	for _, name := range processNames {
		fmt.Fprintf(out, " %s %.0f", name, r.PeakRSS[name])
	}
	fmt.Fprintln(out)
	if s := r.Soak; s != nil {
		s.print(out)
	}
}

// printMicrosoft prints Microsoft requests by route against the floor.
func (b *bench) printMicrosoft(out io.Writer) {
	fmt.Fprintln(out, "\nMicrosoft requests, observed/floor (floor per sync: 1 product list, 1 page of subscriptions, 1 of subscribed SKUs; 1 PUT per differing product; tokens 1 per tenant and resource per lifetime):")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var keys []map[string]int
	header := "route\t"
	for _, p := range b.rep.Phases {
		keys = append(keys, p.Microsoft.Requests, p.Microsoft.Floor)
		header += p.Name + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, k := range keysOf(keys...) {
		row := k + "\t"
		for _, p := range b.rep.Phases {
			row += fmt.Sprintf("%d/%d\t", p.Microsoft.Requests[k], p.Microsoft.Floor[k])
		}
		fmt.Fprintln(tw, row)
	}
	_ = tw.Flush()
	for _, p := range b.rep.Phases {
		for _, e := range p.Microsoft.Excess {
			fmt.Fprintf(out, "  %s: %s\n", p.Name, e)
		}
	}
}

// statusWrite is the controller's status write (an update of the status
// subresource), one per reconcile.
const statusWrite = "update tenantpurchasepolicies/status"

// requestRoles says what the controller's requests are for.
var requestRoles = map[string]string{
	"patch tenantpurchasepolicies": " (finalizer)",
	statusWrite:                    " (status; twice at adoption: the snapshot first)",
	"list tenantpurchasepolicies (field selector)": " (ownership, uncached)",
	"get leases (tenant)":                          " (ownership)",
	"create leases (tenant)":                       " (ownership, a tenant's first owner)",
	"update leases (tenant)":                       " (ownership, renewed or handed over)",
	"list leases (tenant)":                         " (ownership)",
	"get secrets":                                  " (credentials, uncached)",
	"create events":                                " (Events)",
	"patch events":                                 " (Events, repeated)",
	"get leases":                                   " (leader election)",
	"update leases":                                " (leader election)",
	"create tokenreviews":                          " (metrics authn)",
	"create subjectaccessreviews":                  " (metrics authz)",
}

// printAPIServer prints the controller's API-server requests per reconcile.
func (b *bench) printAPIServer(out io.Writer) {
	fmt.Fprintf(out, "\nAPI-server requests per reconcile and server latency p50/p99 ms, controller's user %s (audit log):\n", controllerUser)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	var keys []map[string]int
	header := "request\t"
	for _, p := range b.rep.Phases {
		keys = append(keys, p.APIServer.Requests)
		header += p.Name + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, k := range keysOf(keys...) {
		row := k + requestRoles[k] + "\t"
		for _, p := range b.rep.Phases {
			if q, ok := p.APIServer.Latency[k]; ok {
				row += fmt.Sprintf("%.2f %.0f/%.0f\t", p.APIServer.PerReconcile[k], q.P50, q.P99)
			} else {
				row += "-\t"
			}
		}
		fmt.Fprintln(tw, row)
	}
	_ = tw.Flush()
	for _, p := range b.rep.Phases {
		for _, k := range keysOf(p.APIServer.Failed) {
			fmt.Fprintf(out, "  %s: %d answered %s\n", p.Name, p.APIServer.Failed[k], k)
		}
	}
}

// printCPU prints where the CPU went in each phase.
func (b *bench) printCPU(out io.Writer) {
	fmt.Fprintf(out, "\nCPU seconds by process (%d cores shared by all):\n", goruntime.NumCPU())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "process\t"
	for _, p := range b.rep.Phases {
		header += p.Name + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, name := range processNames {
		row := name + "\t"
		for _, p := range b.rep.Phases {
			row += fmt.Sprintf("%.1f\t", p.ProcessCPU[name])
		}
		fmt.Fprintln(tw, row)
	}
	_ = tw.Flush()
}

// describeMachine reads nproc, the CPU model, memory, the kernel, the Go
// version (the commit is read when the run begins).
func describeMachine() *machine {
	m := &machine{CPUs: goruntime.NumCPU(), GoVersion: goruntime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if mem, err := statusKB("/proc/meminfo", "MemTotal:"); err == nil {
		m.MemoryMiB = mem >> 20
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(k))
	}
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// gitCommit is HEAD, marked -dirty when the tree has changes.
func gitCommit(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(head))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += "-dirty"
	}
	return commit
}

// kib is n bytes in KiB.
func kib(n int) float64 { return float64(n) / 1024 }
