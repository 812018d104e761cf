// Package litewitnesstest runs the real litewitness (the tlog-witness of
// filippo.io/torchwood) for interoperability tests: it builds litewitness
// and witnessctl from the module proxy at the version go.mod requires, runs
// a dedicated ssh-agent holding a fresh Ed25519 key as litewitness wants,
// and registers logs with witnessctl.
package litewitnesstest

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Version is the torchwood release the tools are built from (go.mod's).
const Version = "v0.6.1"

var vkeyRE = regexp.MustCompile(`vkey=(\S+)`)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build installs litewitness and witnessctl into a temporary GOBIN, once
// per test process.
func build(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "litewitness-bin")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "install", "filippo.io/torchwood/cmd/litewitness@"+Version, "filippo.io/torchwood/cmd/witnessctl@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go install litewitness@%s: %v\n%s", Version, err, out)
			return
		}
		binDir = dir
	})
	if buildErr != nil {
		tb.Fatalf("%v", buildErr)
	}
	return binDir
}

// Witness is a running litewitness.
type Witness struct {
	tb        testing.TB
	bin       string
	dir       string
	sock      string
	fpr       string
	Name      string
	PublicKey ed25519.PublicKey
	Addr      string // host:port it listens on
	URL       string // its submission prefix
	VKey      string // its cosignature/v1 verifier key, as it logs it
	DB        string
	agent     *exec.Cmd
	cmd       *exec.Cmd
	stderr    *bytes.Buffer
}

// Start builds (once) and starts litewitness named name on a free
// loopback port, with its own ssh-agent and key. Everything stops at
// cleanup. It skips the test when ssh-agent is not installed.
func Start(tb testing.TB, name string) *Witness {
	tb.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s is not installed (scripts/deps.sh test installs openssh-client)", tool)
		}
	}
	bin := build(tb)
	// A short directory: a unix socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	w := &Witness{tb: tb, bin: bin, dir: dir, sock: filepath.Join(dir, "agent.sock"), Name: name, DB: filepath.Join(dir, "litewitness.db")}
	key := filepath.Join(dir, "witness_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "litewitness", "-f", key).CombinedOutput(); err != nil {
		tb.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pubText, err := os.ReadFile(key + ".pub")
	if err != nil {
		tb.Fatal(err)
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	if err != nil {
		tb.Fatal(err)
	}
	w.fpr = ssh.FingerprintSHA256(pk)
	cpk, ok := pk.(ssh.CryptoPublicKey)
	if !ok {
		tb.Fatal("ssh key has no crypto public key")
	}
	edpk, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok {
		tb.Fatal("not an Ed25519 key")
	}
	w.PublicKey = edpk
	w.agent = exec.Command("ssh-agent", "-D", "-a", w.sock)
	w.agent.Stdout, w.agent.Stderr = nil, nil
	if err := w.agent.Start(); err != nil {
		tb.Fatalf("ssh-agent: %v", err)
	}
	tb.Cleanup(func() { w.agent.Process.Kill(); w.agent.Wait() })
	waitFile(tb, w.sock)
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+w.sock)
	if out, err := add.CombinedOutput(); err != nil {
		tb.Fatalf("ssh-add: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	w.Addr = l.Addr().String()
	l.Close()
	w.URL = "http://" + w.Addr
	w.Restart()
	tb.Cleanup(w.Stop)
	return w
}

// Restart starts litewitness (again) on the same address and database.
func (w *Witness) Restart() {
	w.tb.Helper()
	w.Stop()
	w.stderr = &bytes.Buffer{}
	w.cmd = exec.Command(filepath.Join(w.bin, "litewitness"), "-ssh-agent", w.sock, "-name", w.Name, "-key", w.fpr, "-listen", w.Addr, "-db", w.DB)
	w.cmd.Stderr = w.stderr
	if err := w.cmd.Start(); err != nil {
		w.tb.Fatalf("litewitness: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", w.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			w.tb.Fatalf("litewitness did not listen on %s: %s", w.Addr, w.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// litewitness logs its verifier key at start.
	for w.VKey == "" {
		if m := vkeyRE.FindStringSubmatch(w.stderr.String()); m != nil {
			w.VKey = m[1]
			break
		}
		if time.Now().After(deadline) {
			w.tb.Fatalf("litewitness did not log its verifier key:\n%s", w.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops litewitness (the test can start it again with Restart).
func (w *Witness) Stop() {
	if w.cmd != nil && w.cmd.Process != nil {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		w.cmd = nil
	}
}

// Log is litewitness's log so far.
func (w *Witness) Log() string {
	if w.stderr == nil {
		return ""
	}
	return w.stderr.String()
}

// AddLog registers a log (its origin and the log's verifier key) with
// witnessctl, as a witness operator does.
func (w *Witness) AddLog(origin, vkey string) {
	w.tb.Helper()
	for _, args := range [][]string{{"add-log", "-db", w.DB, "-origin", origin}, {"add-key", "-db", w.DB, "-origin", origin, "-key", vkey}} {
		if out, err := exec.Command(filepath.Join(w.bin, "witnessctl"), args...).CombinedOutput(); err != nil {
			w.tb.Fatalf("witnessctl %s: %v\n%s", args[0], err, out)
		}
	}
}

func waitFile(tb testing.TB, p string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not appear", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
