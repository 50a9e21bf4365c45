//go:build !linux

package procs

import (
	"path/filepath"
	"syscall"
)

// childProcAttr puts a child in its own process group, so the terminal's
// Ctrl-C reaches only the harness, which stops children in order. Only Linux
// has a parent-death signal.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// GuardBinaries returns the real binaries: without a parent-death signal
// there is nothing to guard with.
func GuardBinaries(_, assets string) (apiserver, etcd string, err error) {
	return filepath.Join(assets, "kube-apiserver"), filepath.Join(assets, "etcd"), nil
}

// RunAsGuardedChild is never true outside Linux.
func RunAsGuardedChild() bool { return false }
