package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stopGrace is how long a process may take to exit after SIGTERM before it
// is killed.
const stopGrace = 10 * time.Second

// process is one running control-plane binary whose output goes to
// <dir>/<name>.log.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
}

func startProcess(name, binary, dir string, args []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = dir
	// Own process group, so that a signal to the caller's terminal group
	// (Ctrl-C) does not reach the children before we stop them in order.
	// Pdeathsig kills the child if the Go process dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id, for callers that measure or supervise it.
func (p *process) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes an unexpected exit with the tail of the log, which is
// where the binary says why.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited (%v); last lines of %s:\n%s", p.name, p.waitErr, p.logPath, p.logTail(15))
}

func (p *process) logTail(lines int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// stop sends SIGTERM, waits up to stopGrace, then kills.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// errProcessExited marks a readiness wait that ended because the process died.
var errProcessExited = errors.New("process exited")

// waitFor polls check until it succeeds, the process exits, or ctx ends.
// The error of the last attempt is kept so a timeout says what was seen.
func (p *process) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%w: %w", errProcessExited, p.exitError())
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready: %w (last check: %v; log: %s)", p.name, what, ctx.Err(), last, p.logPath)
		case <-p.done:
		case <-tick.C:
		}
	}
}

// Process is a binary run beside a control plane (Cluster API's manager,
// for one), logging to <dir>/<name>.log, in its own process group and
// killed if this process dies.
type Process struct{ p *process }

// StartProcess runs binary with args in dir.
func StartProcess(name, binary, dir string, args []string) (*Process, error) {
	p, err := startProcess(name, binary, dir, args)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// PID of the process.
func (p *Process) PID() int { return p.p.PID() }

// Exited reports whether it has ended.
func (p *Process) Exited() bool { return p.p.exited() }

// Stop ends it: SIGTERM, then SIGKILL after a grace period.
func (p *Process) Stop() { p.p.stop() }

// LogPath is where its output goes.
func (p *Process) LogPath() string { return p.p.logPath }

// WaitFor polls check until it succeeds, the process exits (the error then
// holds the end of its log) or ctx ends.
func (p *Process) WaitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return p.p.waitFor(ctx, what, check)
}
