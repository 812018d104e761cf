package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/workspace-sandbox/workspace/api"
	"github.com/workspace-sandbox/workspace/vm"
)

// guestAgent is what exec and provisioning need of the driver: the QEMU
// guest agent's exec and file commands (*vm.Driver has them).
type guestAgent interface {
	GuestPing(ctx context.Context, name string) error
	GuestExecStart(ctx context.Context, name string, argv []string, input []byte) (int, error)
	GuestExecStatus(ctx context.Context, name string, pid int) (vm.ExecStatus, error)
	GuestFileOpen(ctx context.Context, name, path, mode string) (int, error)
	GuestFileRead(ctx context.Context, name string, handle, count int) ([]byte, error)
	GuestFileSeek(ctx context.Context, name string, handle int, offset int64) error
	GuestFileWrite(ctx context.Context, name string, handle int, data []byte) error
	GuestFileClose(ctx context.Context, name string, handle int) error
}

var _ guestAgent = (*vm.Driver)(nil)

// execWrapper runs in the guest (sh -c, any POSIX sh: Debian's dash or
// busybox) around the command: the guest agent returns a command's output
// only when it has exited, so the output goes to files the daemon reads as
// they grow, and streamed stdin is appended to a file that tail -f feeds
// to the command through a FIFO. The command runs as the desktop user (the
// guest's uid 1000) unless a user is named, with the desktop's X display.
// Arguments: DIR USER(- for the desktop user) STDIN(0|1) CMD ARGS...
const execWrapper = `set -u
d=$1 u=$2 in=$3
shift 3
umask 077
mkdir -p /run/workspace-exec && mkdir "$d" || exit 125
: >"$d/in"
: >"$d/out"
: >"$d/err"
desk=$(awk -F: '$3 == 1000 { print $1; exit }' /etc/passwd 2>/dev/null)
[ "$u" = - ] && u=${desk:-root}
xa=/home/$desk/.Xauthority
home=$(awk -F: -v u="$u" '$1 == u { print $6; exit }' /etc/passwd)
cd "${home:-/}" 2>/dev/null || cd /
if [ "$u" != root ]; then
	set -- runuser -u "$u" -- env DISPLAY=:0 XAUTHORITY="$xa" HOME="${home:-/}" USER="$u" LOGNAME="$u" "$@"
else
	set -- env DISPLAY=:0 XAUTHORITY="$xa" "$@"
fi
if [ "$in" = 1 ]; then
	mkfifo "$d/fifo"
	tail -f -n +1 "$d/in" >"$d/fifo" &
	echo $! >"$d/tail.pid"
	"$@" <"$d/fifo" >"$d/out" 2>"$d/err" &
else
	"$@" </dev/null >"$d/out" 2>"$d/err" &
fi
echo $! >"$d/cmd.pid"
wait $!
rc=$?
[ -f "$d/tail.pid" ] && kill "$(cat "$d/tail.pid")" 2>/dev/null
exit $rc
`

// Exec's pace: how often the daemon polls the guest for output, and how
// much it reads per call.
const (
	execPoll  = 150 * time.Millisecond
	execChunk = 48 << 10
	// execPingTimeout is how long a guest agent has to answer before exec
	// is refused.
	execPingTimeout = 10 * time.Second
)

// errNoGuestAgent explains a refused exec.
func errNoGuestAgent(name string, err error) error {
	return fmt.Errorf("%w: workspace %q: its guest does not answer on the QEMU guest agent (%v); exec, shell and provisioning need qemu-guest-agent running in the guest (the desktop images and the test image have it)", api.ErrUnavailable, name, err)
}

// handleExec runs a command in a workspace's guest over an upgraded
// connection (api.ExecProtocol).
func (s *server) handleExec(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	req, err := api.ExecRequestFrom(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !isUpgrade(r, api.ExecProtocol) {
		s.writeError(w, r, fmt.Errorf("%w: exec in %q: the request must upgrade the connection (Connection: Upgrade, Upgrade: %s)", api.ErrInvalid, name, api.ExecProtocol))
		return
	}
	ga, err := s.guestAgentOf(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		s.writeError(w, r, errors.New("exec: this connection cannot be upgraded"))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		s.log.Error("exec: hijack connection", "error", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + api.ExecProtocol + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	log := s.log.With("workspace", name, "command", req.Argv[0], "user", req.User)
	if pc, ok := r.Context().Value(peerKey{}).(peerCred); ok {
		log = log.With("uid", pc.uid, "pid", pc.pid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.events.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	x := &guestExec{ga: ga, name: name, log: log, out: json.NewEncoder(conn)}
	var stdin io.Reader
	if req.Stdin {
		stdin = &hijacked{Conn: conn, r: brw.Reader}
	} else {
		// Without stdin the client only closes: that ends the command.
		go func() {
			io.Copy(io.Discard, brw)
			cancel()
		}()
	}
	start := time.Now()
	code, err := x.run(ctx, req, stdin, cancel)
	if err != nil {
		log.Warn("exec failed", "error", err)
		x.send(api.ExecFrame{Error: err.Error()})
		return
	}
	log.Info("exec done", "exit", code, "duration", time.Since(start).Round(time.Millisecond))
	x.send(api.ExecFrame{Exit: &code})
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// guestAgentOf is the driver's guest agent for a running workspace whose
// agent answers, or an error that says why not.
func (s *server) guestAgentOf(ctx context.Context, name string) (guestAgent, error) {
	ws, err := s.m.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if ws.State != api.StateRunning {
		return nil, fmt.Errorf("%w: workspace %q is %s: start it first (workspace start %s)", api.ErrConflict, name, ws.State, name)
	}
	ga, ok := s.m.hv.(guestAgent)
	if !ok {
		return nil, fmt.Errorf("%w: this daemon's hypervisor has no guest agent access", api.ErrUnavailable)
	}
	pctx, cancel := context.WithTimeout(ctx, execPingTimeout)
	defer cancel()
	if err := ga.GuestPing(pctx, name); err != nil {
		return nil, errNoGuestAgent(name, err)
	}
	return ga, nil
}

// guestExec is one command running in a guest through its agent.
type guestExec struct {
	ga   guestAgent
	name string
	log  hclog.Logger
	mu   sync.Mutex
	out  *json.Encoder
}

func (x *guestExec) send(f api.ExecFrame) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.out.Encode(f)
}

// guestFile is an output file of the command, read as it grows.
type guestFile struct {
	path   string
	handle int
	open   bool
	off    int64
}

// run starts the wrapper and streams until the command exits; stdin (when
// not nil) is appended to the command's input file as it arrives.
func (x *guestExec) run(ctx context.Context, req api.ExecRequest, stdin io.Reader, cancel func()) (int, error) {
	id := make([]byte, 8)
	rand.Read(id)
	dir := "/run/workspace-exec/" + hex.EncodeToString(id)
	user, in := req.User, "0"
	if user == "" {
		user = "-"
	}
	if stdin != nil {
		in = "1"
	}
	argv := append([]string{"/bin/sh", "-c", execWrapper, "sh", dir, user, in}, req.Argv...)
	pid, err := x.ga.GuestExecStart(ctx, x.name, argv, nil)
	if err != nil {
		return 0, err
	}
	files := []*guestFile{{path: dir + "/out"}, {path: dir + "/err"}}
	defer x.cleanup(dir, files)
	var input *inputPump
	if stdin != nil {
		input = newInputPump(x, dir, stdin)
		defer input.stop()
	}
	stopped := false
	for {
		if ctx.Err() != nil && !stopped {
			// The client left or the daemon stops: end the command.
			stopped = true
			x.ga.GuestExecStart(context.Background(), x.name, []string{"/bin/sh", "-c", `kill "$(cat "$1/cmd.pid")"`, "sh", dir}, nil)
		}
		st, err := x.ga.GuestExecStatus(context.Background(), x.name, pid)
		if err != nil {
			return 0, err
		}
		if err := x.drain(files); err != nil {
			return 0, err
		}
		if input != nil && files[0].open {
			// The wrapper made the input file before the output files.
			input.pump(ctx)
		}
		if st.Exited {
			if !files[0].open {
				return 0, fmt.Errorf("the command did not start in the guest (status %d): does the guest have /bin/sh, awk and runuser?", st.ExitCode)
			}
			if err := x.drain(files); err != nil {
				return 0, err
			}
			return st.ExitCode, nil
		}
		if stopped && ctx.Err() != nil {
			time.Sleep(execPoll)
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(execPoll):
		}
	}
}

// drain sends what the output files gained since the last call.
func (x *guestExec) drain(files []*guestFile) error {
	for i, f := range files {
		if !f.open {
			h, err := x.ga.GuestFileOpen(context.Background(), x.name, f.path, "r")
			if err != nil {
				continue // not made yet
			}
			f.handle, f.open = h, true
		}
		// The guest agent reads through stdio, whose end-of-file mark
		// sticks: a seek to where we are clears it.
		if err := x.ga.GuestFileSeek(context.Background(), x.name, f.handle, f.off); err != nil {
			return err
		}
		for {
			b, err := x.ga.GuestFileRead(context.Background(), x.name, f.handle, execChunk)
			if err != nil {
				return err
			}
			if len(b) == 0 {
				break
			}
			f.off += int64(len(b))
			fr := api.ExecFrame{Stdout: b}
			if i == 1 {
				fr = api.ExecFrame{Stderr: b}
			}
			if err := x.send(fr); err != nil {
				return fmt.Errorf("send output: %w", err)
			}
		}
	}
	return nil
}

// cleanup closes the agent's handles and removes the exec folder.
func (x *guestExec) cleanup(dir string, files []*guestFile) {
	for _, f := range files {
		if f.open {
			x.ga.GuestFileClose(context.Background(), x.name, f.handle)
		}
	}
	if _, err := x.ga.GuestExecStart(context.Background(), x.name, []string{"rm", "-rf", dir}, nil); err != nil {
		x.log.Debug("exec: remove the folder in the guest", "error", err)
	}
}

// inputPump appends the client's stdin to the command's input file.
type inputPump struct {
	x      *guestExec
	path   string
	chunks chan []byte
	// pending is a chunk not yet written (the file could not be opened).
	pending []byte
	handle  int
	open    bool
	closed  bool
	quit    chan struct{}
}

func newInputPump(x *guestExec, dir string, r io.Reader) *inputPump {
	p := &inputPump{x: x, path: dir + "/in", chunks: make(chan []byte, 16), quit: make(chan struct{})}
	go func() {
		defer close(p.chunks)
		buf := make([]byte, 16<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case p.chunks <- append([]byte(nil), buf[:n]...):
				case <-p.quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

// pump writes what arrived; at the client's EOF it ends the command's
// input (tail -f is stopped once it had time to pass on the last bytes).
func (p *inputPump) pump(ctx context.Context) {
	if p.closed {
		return
	}
	for {
		b := p.pending
		if b == nil {
			select {
			case c, ok := <-p.chunks:
				if !ok {
					p.finish()
					return
				}
				b = c
			default:
				return
			}
		}
		if !p.open {
			h, err := p.x.ga.GuestFileOpen(context.Background(), p.x.name, p.path, "a")
			if err != nil {
				p.x.log.Debug("exec: open the input", "error", err)
				p.pending = b
				return
			}
			p.handle, p.open = h, true
		}
		p.pending = nil
		if err := p.x.ga.GuestFileWrite(context.Background(), p.x.name, p.handle, b); err != nil {
			p.x.log.Debug("exec: write the input", "error", err)
		}
	}
}

func (p *inputPump) finish() {
	p.closed = true
	if p.open {
		p.x.ga.GuestFileClose(context.Background(), p.x.name, p.handle)
		p.open = false
	}
	dir := p.path[:len(p.path)-len("/in")]
	p.x.ga.GuestExecStart(context.Background(), p.x.name, []string{"/bin/sh", "-c", `sleep 1.5; kill "$(cat "$1/tail.pid")"`, "sh", dir}, nil)
}

func (p *inputPump) stop() {
	close(p.quit)
	if p.open {
		p.x.ga.GuestFileClose(context.Background(), p.x.name, p.handle)
	}
}
