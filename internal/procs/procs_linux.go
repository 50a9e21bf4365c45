//go:build linux

package procs

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"syscall"
)

// childProcAttr puts a child in its own process group (so the terminal's
// Ctrl-C reaches only the harness, which stops children in order) and has the
// kernel kill it if the harness dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// Environment of a guarded control-plane binary: the directory of the real
// binaries and the harness's PID.
const (
	guardDirEnv    = "TPP_GUARD_REAL_BIN_DIR"
	guardParentEnv = "TPP_GUARD_PARENT_PID"
)

// guardedBinaries are the envtest binaries a harness starts through itself.
var guardedBinaries = []string{"kube-apiserver", "etcd"}

// GuardBinaries makes envtest's kube-apiserver and etcd die with the
// harness: envtest starts them in their own process group but sets no
// parent-death signal, so the harness points envtest at symlinks to itself in
// dir; started under those names, the harness sets the signal and execs the
// real binary from assets (see RunAsGuardedChild, which the harness's main
// must call first). It returns the apiserver and etcd paths.
func GuardBinaries(dir, assets string) (apiserver, etcd string, err error) {
	self, err := os.Executable()
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	for _, name := range guardedBinaries {
		if err := os.Symlink(self, filepath.Join(dir, name)); err != nil {
			return "", "", err
		}
	}
	if err := os.Setenv(guardDirEnv, assets); err != nil {
		return "", "", err
	}
	if err := os.Setenv(guardParentEnv, strconv.Itoa(os.Getpid())); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, "kube-apiserver"), filepath.Join(dir, "etcd"), nil
}

// RunAsGuardedChild, when the harness was started under a guarded binary's
// name, sets SIGKILL as the parent-death signal and execs the real binary; it
// returns false otherwise.
func RunAsGuardedChild() bool {
	name := filepath.Base(os.Args[0])
	dir := os.Getenv(guardDirEnv)
	if dir == "" || !slices.Contains(guardedBinaries, name) {
		return false
	}
	goruntime.LockOSThread() // the signal setting belongs to this thread, which execs
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "guard: prctl:", errno)
		os.Exit(127)
	}
	if strconv.Itoa(os.Getppid()) != os.Getenv(guardParentEnv) {
		os.Exit(1) // the harness died before the signal was set
	}
	real := filepath.Join(dir, name)
	err := syscall.Exec(real, append([]string{real}, os.Args[1:]...), os.Environ())
	fmt.Fprintln(os.Stderr, "guard: exec", real+":", err)
	os.Exit(127)
	return true
}
