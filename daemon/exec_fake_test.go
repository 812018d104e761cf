package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

// echoAgentHV is a hypervisor whose guest agent runs every exec as a
// command that prints "hello", then echoes its stdin back and exits 3 at
// the input's end. Its files read as the guest agent's do, through stdio:
// once read to their end they read nothing more until a seek.
type echoAgentHV struct {
	*fakeHV
	mu      sync.Mutex
	files   map[string]*bytes.Buffer
	handles map[int]*fakeHandle
	next    int
	exited  map[int]bool
}

type fakeHandle struct {
	path string
	off  int
	eof  bool
}

func newEchoAgentHV() *echoAgentHV {
	return &echoAgentHV{fakeHV: newFakeHV(), files: map[string]*bytes.Buffer{}, handles: map[int]*fakeHandle{}, exited: map[int]bool{}}
}

func (h *echoAgentHV) GuestPing(context.Context, string) error { return nil }

func (h *echoAgentHV) GuestExecStart(_ context.Context, _ string, argv []string, _ []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	pid := h.next
	if len(argv) < 5 || argv[0] != "/bin/sh" || argv[1] != "-c" || argv[2] != execWrapper {
		// Cleanup and the end of input: the input ends at "kill".
		if strings.Contains(strings.Join(argv, " "), "tail.pid") {
			h.files["eof"] = &bytes.Buffer{}
		}
		h.exited[pid] = true
		return pid, nil
	}
	dir := argv[4]
	go h.command(pid, dir)
	return pid, nil
}

// command is the guest's side of one exec: slow to make its files, then
// "hello", then the input echoed as it arrives, exit 3 at its end.
func (h *echoAgentHV) command(pid int, dir string) {
	time.Sleep(50 * time.Millisecond)
	h.mu.Lock()
	for _, f := range []string{"in", "out", "err"} {
		h.files[dir+"/"+f] = &bytes.Buffer{}
	}
	h.files[dir+"/out"].WriteString("hello\n")
	h.mu.Unlock()
	sent := 0
	for {
		time.Sleep(20 * time.Millisecond)
		h.mu.Lock()
		in := h.files[dir+"/in"].Bytes()
		h.files[dir+"/out"].Write(in[sent:])
		sent = len(in)
		_, eof := h.files["eof"]
		if eof {
			h.files[dir+"/err"].WriteString("bye\n")
			h.exited[pid] = true
		}
		h.mu.Unlock()
		if eof {
			return
		}
	}
}

func (h *echoAgentHV) GuestExecStatus(_ context.Context, _ string, pid int) (vm.ExecStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited[pid] {
		return vm.ExecStatus{Exited: true, ExitCode: 3}, nil
	}
	return vm.ExecStatus{}, nil
}

func (h *echoAgentHV) GuestFileOpen(_ context.Context, _ string, path, _ string) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.files[path]; !ok {
		return 0, errors.New("No such file or directory")
	}
	h.next++
	h.handles[h.next] = &fakeHandle{path: path}
	return h.next, nil
}

func (h *echoAgentHV) GuestFileRead(_ context.Context, _ string, handle, count int) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fh := h.handles[handle]
	b := h.files[fh.path].Bytes()
	if fh.eof || fh.off >= len(b) {
		fh.eof = true
		return nil, nil
	}
	n := min(count, len(b)-fh.off)
	out := append([]byte(nil), b[fh.off:fh.off+n]...)
	fh.off += n
	return out, nil
}

func (h *echoAgentHV) GuestFileSeek(_ context.Context, _ string, handle int, off int64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	fh := h.handles[handle]
	fh.off, fh.eof = int(off), false
	return nil
}

func (h *echoAgentHV) GuestFileWrite(_ context.Context, _ string, handle int, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[h.handles[handle].path].Write(data)
	return nil
}

func (h *echoAgentHV) GuestFileClose(_ context.Context, _ string, handle int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.handles, handle)
	return nil
}

// TestExecStreamsOutputAndStdin: output that grows after a read to its
// end still arrives, stdin sent before the guest made its input file is
// not lost, its end ends the command, and the exit status comes last.
func TestExecStreamsOutputAndStdin(t *testing.T) {
	hv := newEchoAgentHV()
	c, _ := startDaemon(t, hv)
	ctx := context.Background()
	if _, err := importBytes(t, c, "test", qcow2Bytes(1<<30, false, 4096)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, api.CreateRequest{Name: "acme", Profile: testProfile(t, `image = "test"`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "acme", api.StartRequest{}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Exec(ctx, "acme", api.ExecRequest{Argv: []string{"cat"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Sent at once, before the guest has made the input file.
	io.WriteString(conn, "ping\n")
	go func() {
		time.Sleep(400 * time.Millisecond)
		io.WriteString(conn, "pong\n")
		conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	var out, errb bytes.Buffer
	code, err := api.ReadExecFrames(conn, &out, &errb)
	if err != nil || code != 3 || out.String() != "hello\nping\npong\n" || errb.String() != "bye\n" {
		t.Fatalf("code %d err %v stdout %q stderr %q", code, err, out.String(), errb.String())
	}
}
