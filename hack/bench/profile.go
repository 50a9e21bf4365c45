package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenantpolicy/purchase-policy-controller/internal/procs"
)

// pprofFlag is the controller's pprof endpoint flag; -profile sets it, so a
// profiled run is not a run with the deployed args (the report says so).
const pprofFlag = "pprof-bind-address"

// profiler takes CPU profiles of the controller, the kube-apiserver and the
// harness while a phase runs (-profile): what each spends its CPU on at
// scale.
type profiler struct {
	seconds    int
	dir        string
	controller string // host:port of the controller's pprof, "" without
	apiserver  *rest.Config
	wg         sync.WaitGroup
}

// addPprofArg gives the controller a pprof endpoint on a free local port.
func addPprofArg(ca *controllerArgs, flags binaryFlags) (string, error) {
	if _, ok := flags[pprofFlag]; !ok {
		ca.Changes = append(ca.Changes, "-profile: the controller binary has no --"+pprofFlag+", only the kube-apiserver is profiled")
		return "", nil
	}
	addr, err := procs.FreeAddr()
	if err != nil {
		return "", err
	}
	ca.Args = append(ca.Args, "--"+pprofFlag+"="+addr)
	ca.Changes = append(ca.Changes, "-profile: added --"+pprofFlag+"="+addr+" (not a deployed flag)")
	return addr, nil
}

// start takes, in the background, a CPU profile of each process for the
// profiler's seconds (or until ctx ends), written as <phase>-<process>.pprof.
func (p *profiler) start(ctx context.Context, phase string, say func(string, ...any)) {
	if p == nil {
		return
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		say("  profile: %v", err)
		return
	}
	query := fmt.Sprintf("/debug/pprof/profile?seconds=%d", p.seconds)
	timeout := time.Duration(p.seconds)*time.Second + time.Minute
	take := func(name string, get func(context.Context) (io.ReadCloser, error)) {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		path := filepath.Join(p.dir, phase+"-"+name+".pprof")
		body, err := get(ctx)
		if err == nil {
			err = writeBody(path, body)
		}
		if err != nil {
			say("  profile of %s in %s: %v", name, phase, err)
		}
	}
	if p.controller != "" {
		p.wg.Add(1)
		go take("controller", func(ctx context.Context) (io.ReadCloser, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.controller+query, nil)
			if err != nil {
				return nil, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				return nil, fmt.Errorf("controller pprof: %s", resp.Status)
			}
			return resp.Body, nil
		})
	}
	p.wg.Add(1)
	go take("harness", func(ctx context.Context) (io.ReadCloser, error) { return profileSelf(ctx, p.seconds) })
	p.wg.Add(1)
	go take("kube-apiserver", func(ctx context.Context) (io.ReadCloser, error) {
		cfg := rest.CopyConfig(p.apiserver)
		cfg.Timeout = timeout
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		return cs.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(p.seconds)).Stream(ctx)
	})
}

// profileSelf takes a CPU profile of the harness itself for seconds (or
// until ctx ends): its CPU shares the machine's cores with the controller.
func profileSelf(ctx context.Context, seconds int) (io.ReadCloser, error) {
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return nil, err
	}
	select {
	case <-time.After(time.Duration(seconds) * time.Second):
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return io.NopCloser(&buf), nil
}

// wait waits for the profiles being taken.
func (p *profiler) wait() {
	if p != nil {
		p.wg.Wait()
	}
}

func writeBody(path string, body io.ReadCloser) error {
	defer body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
