package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// socketGroup is the group whose members may use the daemon socket.
const socketGroup = "workspace"

type peerKey struct{}

type peerCred struct {
	uid, gid uint32
	pid      int32
	allowed  bool
}

// groupID returns the gid of the workspace group, or -1 when it does not exist.
func groupID() int {
	g, err := user.LookupGroup(socketGroup)
	if err != nil {
		return -1
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1
	}
	return gid
}

// connContext reads the peer's credentials (SO_PEERCRED) when a connection
// is accepted and records whether that peer may use the API.
func connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	pc := peerCred{}
	raw, err := uc.SyscallConn()
	if err == nil {
		var cred *unix.Ucred
		var cerr error
		err = raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
		if err == nil && cerr == nil {
			pc.uid, pc.gid, pc.pid = cred.Uid, cred.Gid, cred.Pid
			pc.allowed = peerAllowed(pc, uint32(os.Getuid()), groupID(), procGroups)
		}
	}
	return context.WithValue(ctx, peerKey{}, pc)
}

// peerAllowed: root, the daemon's own user, or any process whose primary or
// supplementary groups include the workspace group.
func peerAllowed(pc peerCred, self uint32, wsGID int, groups func(pid int32) []int) bool {
	if pc.uid == 0 || pc.uid == self {
		return true
	}
	if wsGID < 0 {
		return false
	}
	if int(pc.gid) == wsGID {
		return true
	}
	for _, g := range groups(pc.pid) {
		if g == wsGID {
			return true
		}
	}
	return false
}

// procGroups reads a process's supplementary groups from /proc.
func procGroups(pid int32) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		var out []int
		for _, f := range strings.Fields(rest) {
			if g, err := strconv.Atoi(f); err == nil {
				out = append(out, g)
			}
		}
		return out
	}
	return nil
}
