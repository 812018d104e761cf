package images

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestOutputPaths(t *testing.T) {
	o := OutputPaths("/x/desk.qcow2")
	if o.Disk != "/x/desk.qcow2" || o.Kernel != "/x/desk.vmlinuz" || o.Initrd != "/x/desk.initrd.img" || o.CmdlineFile != "/x/desk.cmdline" {
		t.Fatalf("%+v", o)
	}
}

func TestValidateOptions(t *testing.T) {
	good := DesktopOptions{Variant: VariantMinimal, Out: "/x/a.qcow2", User: "user", Password: "pw"}
	for _, tc := range []struct {
		name string
		mod  func(*DesktopOptions)
		want string
	}{
		{"variant", func(o *DesktopOptions) { o.Variant = "kde" }, `unknown variant "kde"`},
		{"out", func(o *DesktopOptions) { o.Out = "" }, "no output file"},
		{"out suffix", func(o *DesktopOptions) { o.Out = "/x/a.img" }, "must end in .qcow2"},
		{"mirror scheme", func(o *DesktopOptions) { o.Mirror = "ftp://x/debian" }, `mirror "ftp://x/debian"`},
		{"mirror host", func(o *DesktopOptions) { o.Mirror = "http:///debian" }, "has no host"},
		{"user", func(o *DesktopOptions) { o.User = "Bad Name" }, `user name "Bad Name"`},
		{"system user", func(o *DesktopOptions) { o.User = "root" }, "taken by the system"},
		{"systemd user", func(o *DesktopOptions) { o.User = "systemd-network" }, "taken by the system"},
		{"empty password", func(o *DesktopOptions) { o.Password = "" }, "password is empty"},
		{"newline password", func(o *DesktopOptions) { o.Password = "a\nb" }, "line break"},
	} {
		o := good
		tc.mod(&o)
		err := o.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error with %q, got %v", tc.name, tc.want, err)
		}
	}
	o := good
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if !o.Autologin || o.Mirror != DefaultMirror || o.SecurityMirror != DefaultSecurityMirror {
		t.Fatalf("defaults: %+v", o)
	}
	full := good
	full.Variant = VariantFull
	if err := full.validate(); err != nil || full.Autologin {
		t.Fatalf("full variant: autologin %v, %v", full.Autologin, err)
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$`)
	for i := 0; i < 50; i++ {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if !re.MatchString(p) || seen[p] || strings.ContainsAny(p, "l01o") {
			t.Fatalf("password %q", p)
		}
		seen[p] = true
	}
}

func TestCheckMirror(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debian/dists/bookworm/Release" {
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := CheckMirror(ctx, srv.URL+"/debian", "bookworm", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := CheckMirror(ctx, srv.URL+"/debian/", "bookworm", 5*time.Second); err != nil {
		t.Fatalf("trailing slash: %v", err)
	}
	err := CheckMirror(ctx, srv.URL+"/ubuntu", "bookworm", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "--mirror") {
		t.Fatalf("missing suite: %v", err)
	}
	// A closed port: refused at once.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	err = CheckMirror(ctx, "http://"+addr+"/debian", "bookworm", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the Debian archive at http://"+addr+"/debian") {
		t.Fatalf("closed port: %v", err)
	}
	// A server that never answers: the timeout.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	start := time.Now()
	err = CheckMirror(ctx, hang.URL, "bookworm", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no answer within 300ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("silent server: %v after %s", err, time.Since(start))
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dists", "bookworm"), 0o755)
	os.WriteFile(filepath.Join(dir, "dists", "bookworm", "Release"), nil, 0o644)
	if err := CheckMirror(ctx, "file://"+dir, "bookworm", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := CheckMirror(ctx, "file://"+dir, "trixie", time.Second); err == nil {
		t.Fatal("file mirror without the suite passed")
	}
}

func TestCheckAgent(t *testing.T) {
	if err := CheckAgent(""); err == nil {
		t.Fatal("no agent passed")
	}
	dir := t.TempDir()
	txt := filepath.Join(dir, "agent.sh")
	os.WriteFile(txt, []byte("#!/bin/sh\n"), 0o755)
	if err := CheckAgent(txt); err == nil || !strings.Contains(err.Error(), "not a Linux program") {
		t.Fatalf("script: %v", err)
	}
	// /bin/sh is dynamically linked on Debian.
	if err := CheckAgent("/bin/sh"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("dynamic binary: %v", err)
	}
}

func TestCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	o := OutputPaths(filepath.Join(dir, "d.qcow2"))
	if err := checkOutputs(o); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(o.Initrd, nil, 0o644)
	if err := checkOutputs(o); err == nil || !strings.Contains(err.Error(), o.Initrd+" exists already") {
		t.Fatalf("existing output: %v", err)
	}
	if err := checkOutputs(OutputPaths(filepath.Join(dir, "nothere", "d.qcow2"))); err == nil || !strings.Contains(err.Error(), "output folder") {
		t.Fatalf("missing folder: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("the check left files: %v", entries)
	}
}

// TestPlaceOutputs: all four files arrive, or none when one is missing.
func TestPlaceOutputs(t *testing.T) {
	work, dst := t.TempDir(), t.TempDir()
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(work, f), []byte(f), 0o600)
	}
	o := OutputPaths(filepath.Join(dst, "d.qcow2"))
	if err := placeOutputs(work, o); err == nil {
		t.Fatal("placed outputs without a cmdline")
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Fatalf("a failed placement left %v", entries)
	}
	for _, f := range []string{"disk.qcow2", "vmlinuz", "initrd.img", "cmdline"} {
		os.WriteFile(filepath.Join(work, f), []byte(f), 0o600)
	}
	if err := placeOutputs(work, o); err != nil {
		t.Fatal(err)
	}
	for _, p := range o.list() {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
	}
	if b, _ := os.ReadFile(o.Kernel); string(b) != "vmlinuz" {
		t.Fatalf("kernel holds %q", b)
	}
}

func TestRemoveWorkRefusesMounts(t *testing.T) {
	m, err := mountsUnder("/")
	if err != nil || len(m) == 0 {
		t.Fatalf("mounts under /: %v %v", m, err)
	}
	if unescapeMount(`/a\040b`) != "/a b" || unescapeMount(`/plain`) != "/plain" {
		t.Fatal("unescape")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "x", "y"), 0o755)
	if err := removeWork(filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Fatal("work folder left")
	}
}

// TestRecipeEmbedded: the installed binary carries the whole recipe, its
// scripts are executable and parse.
func TestRecipeEmbedded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "recipe")
	if err := extractRecipe(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"build.sh", "essential.sh", "customize.sh", "files/mount-shares", "files/start-agent",
		"files/minimal-session", "files/workspace-agent.service", "files/workspace-shares.service",
		"files/60-workspace-agent.rules", "files/background.xbm", "files/workspace-agent.desktop"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("%s not embedded: %v", f, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.HasPrefix(b, []byte("#!")) {
			if fi.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable", f)
			}
			shell := "sh"
			if bytes.HasPrefix(b, []byte("#!/bin/bash")) {
				shell = "bash"
			}
			if out, err := exec.Command(shell, "-n", filepath.Join(dir, f)).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", shell, f, err, out)
			}
		}
	}
}

func TestPrinterPlainLines(t *testing.T) {
	var b bytes.Buffer
	p := NewPrinter(&b)
	p.Event(Event{Stage: StageCheck})
	p.Event(Event{Stage: StagePackages, Detail: "I: downloading", Elapsed: 3 * time.Second})
	p.Event(Event{Stage: StagePackages, Detail: "I: extracting", Elapsed: 65 * time.Second})
	p.Event(Event{Stage: StageKernel, Elapsed: 125 * time.Second})
	p.Close()
	want := "[00:00] checking privileges, tools and the Debian archive\n[00:03] downloading and installing packages\n[02:05] taking out kernel and initrd\n"
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestRunRecipeStagesAndTail(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s.sh")
	os.WriteFile(script, []byte("echo '::stage packages'\necho 'I: one'\necho 'I: two' >&2\necho '::stage kernel'\necho boom\nexit 3\n"), 0o755)
	var events []string
	tail, err := runRecipe(context.Background(), script, os.Environ(), func(s, d string) { events = append(events, s+"|"+d) }, nil, nullLogger())
	if err == nil || !strings.Contains(tail, "I: one") || !strings.Contains(tail, "boom") || strings.Contains(tail, "::stage") {
		t.Fatalf("err %v, tail:\n%s", err, tail)
	}
	if strings.Join(events, ",") != "packages|,packages|I: one,packages|I: two,kernel|,kernel|boom" {
		t.Fatalf("events %v", events)
	}
	// Cancelled: the whole process group goes.
	os.WriteFile(script, []byte("sleep 60 &\nwait\n"), 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := runRecipe(ctx, script, os.Environ(), func(string, string) {}, nil, nullLogger()); err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("cancelled run: %v after %s", err, time.Since(start))
	}
}

func nullLogger() hclog.Logger { return hclog.NewNullLogger() }
