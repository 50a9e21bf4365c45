package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"
)

// writeAuditPolicy writes the API server's audit policy: the controller's
// requests at Metadata level (user, verb, resource, subresource, URI,
// status; no bodies), once, when the response is complete; nobody else's
// (the harness's own writes, the API server's loopback): the report counts
// only the controller's, and auditing the rest cost the API server CPU the
// phases share.
func writeAuditPolicy(path string) error {
	p := auditv1.Policy{
		TypeMeta:   metav1.TypeMeta{APIVersion: auditv1.SchemeGroupVersion.String(), Kind: "Policy"},
		OmitStages: []auditv1.Stage{auditv1.StageRequestReceived, auditv1.StageResponseStarted},
		Rules: []auditv1.PolicyRule{
			{Level: auditv1.LevelMetadata, Users: []string{controllerUser}},
			{Level: auditv1.LevelNone},
		},
	}
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// auditLogMaxMB keeps the API server from rotating its audit log (it
// rotates at 100 MB by default, which 10,000 tenants reach in one phase):
// the harness reads one file from where it stopped.
const auditLogMaxMB = "1048576"

// auditLog reads the API server's audit log incrementally.
type auditLog struct {
	path   string
	offset int64
}

// auditTally counts the controller's API-server requests of one phase.
type auditTally struct {
	// Requests by "<verb> <resource>[/<subresource>]", with the uncached
	// ownership list told apart by its field selector.
	Requests map[string]int `json:"requests"`
	// Failed counts non-2xx answers by "<code> <request key>".
	Failed map[string]int `json:"failed,omitempty"`
	// latency is how long the API server took to answer, by request key.
	latency map[string][]time.Duration
	// lastActivity is when the newest request other than a lease renewal
	// was answered.
	lastActivity time.Time
}

func newAuditTally() *auditTally {
	return &auditTally{Requests: map[string]int{}, Failed: map[string]int{}, latency: map[string][]time.Duration{}}
}

// read adds the events written since the last read to t.
func (a *auditLog) read(t *auditTally) error {
	f, err := os.Open(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Size() < a.offset {
		return fmt.Errorf("audit log %s shrank from %d to %d bytes: rotated or truncated", a.path, a.offset, fi.Size())
	}
	if _, err := f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // a line without its newline is read again next time
		}
		if err != nil {
			return err
		}
		a.offset += int64(len(line))
		if err := t.add(bytes.TrimSpace(line)); err != nil {
			return err
		}
	}
}

// add counts one event if the controller sent it.
func (t *auditTally) add(line []byte) error {
	if len(line) == 0 {
		return nil
	}
	var e auditv1.Event
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if e.User.Username != controllerUser {
		return nil
	}
	key := requestKey(&e)
	t.Requests[key]++
	if e.Verb != "watch" { // a watch lasts until it is closed
		t.latency[key] = append(t.latency[key], e.StageTimestamp.Sub(e.RequestReceivedTimestamp.Time))
	}
	if e.ResponseStatus != nil && e.ResponseStatus.Code/100 != 2 {
		t.Failed[fmt.Sprintf("%d %s", e.ResponseStatus.Code, key)]++
	}
	if e.ObjectRef == nil || e.ObjectRef.Resource != "leases" {
		t.lastActivity = e.StageTimestamp.Time
	}
	return nil
}

// tenantLeasePrefix starts the name of a tenant's ownership Lease (the
// leader-election Lease is named otherwise).
const tenantLeasePrefix = "tenant-"

// requestKey names a request: "<verb> <resource>[/<subresource>]"; a list
// with a field selector (the ownership check) and a tenant's ownership Lease
// are marked as such, and Events name their API group (core v1 or
// events.k8s.io: RBAC grants them apart).
func requestKey(e *auditv1.Event) string {
	if e.ObjectRef == nil {
		return e.Verb + " " + e.RequestURI
	}
	key := e.Verb + " " + e.ObjectRef.Resource
	if e.ObjectRef.Resource == "events" {
		key += "." + cmp.Or(e.ObjectRef.APIGroup, "core")
	}
	if e.ObjectRef.Subresource != "" {
		key += "/" + e.ObjectRef.Subresource
	}
	if e.ObjectRef.Resource == "leases" && strings.HasPrefix(e.ObjectRef.Name, tenantLeasePrefix) {
		key += " (tenant)"
	}
	if e.Verb == "list" && strings.Contains(e.RequestURI, "fieldSelector=") {
		key += " (field selector)"
	}
	return key
}
