package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/workspace-sandbox/workspace/api"
)

func TestCheckUIAddr(t *testing.T) {
	for _, tc := range []struct {
		addr, cert, key string
		err             string // "" when accepted
	}{
		{"127.0.0.1:7420", "", "", ""},
		{"127.0.0.1:0", "", "", ""},
		{"[::1]:7420", "", "", ""},
		{"localhost:7420", "", "", ""},
		{"0.0.0.0:7420", "", "", "is not a loopback address"},
		{"[::]:7420", "", "", "is not a loopback address"},
		{":7420", "", "", "is not a loopback address"},
		{"192.168.1.20:7420", "", "", "is not a loopback address"},
		{"192.168.1.20:7420", "ui.crt", "", "is not a loopback address"},
		{"0.0.0.0:7420", "ui.crt", "ui.key", ""},
		{"192.168.1.20:7420", "ui.crt", "ui.key", ""},
		{"127.0.0.1:7420", "ui.crt", "", "go together"},
		{"127.0.0.1:7420", "", "ui.key", "go together"},
		{"127.0.0.1", "", "", `--ui-addr "127.0.0.1"`},
	} {
		err := checkUIAddr(tc.addr, tc.cert, tc.key)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("checkUIAddr(%q, %q, %q) refused: %v", tc.addr, tc.cert, tc.key, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("checkUIAddr(%q, %q, %q) = %v, want an error with %q", tc.addr, tc.cert, tc.key, err, tc.err)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "workspace ui test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "ui.crt"), filepath.Join(dir, "ui.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestUIOverTLS serves the web UI with a certificate: the login link is
// https, the session cookie is Secure (and HttpOnly, SameSite=Strict), and
// the pages work over it.
func TestUIOverTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	c, _ := startDaemonWith(t, newFakeHV(), func(cfg *Config) {
		cfg.UITLSCert, cfg.UITLSKey = certFile, keyFile
	})
	// The UI starts just after the API socket answers.
	var l api.UILogin
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if l, err = c.UILogin(context.Background()); err == nil || !strings.Contains(err.Error(), "not running") || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.URL, "https://127.0.0.1:") || !strings.HasPrefix(l.URL, l.Base+"/login?token=") {
		t.Fatalf("login link %q (base %q)", l.URL, l.Base)
	}

	// Plain HTTP to the TLS port gets no session.
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	plain, err := (&http.Client{CheckRedirect: noFollow, Timeout: 10 * time.Second}).Get("http" + strings.TrimPrefix(l.URL, "https"))
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusSeeOther || len(plain.Cookies()) != 0 {
			t.Fatalf("plain HTTP to the TLS UI: %d %v", plain.StatusCode, plain.Cookies())
		}
	}

	hc := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: noFollow,
		Timeout:       10 * time.Second,
	}
	defer hc.CloseIdleConnections()

	resp, err := hc.Get(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.TLS == nil {
		t.Fatalf("login over TLS: %d", resp.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "workspace_session_"+strings.TrimPrefix(l.Base[strings.LastIndex(l.Base, ":"):], ":") {
			session = ck
		}
	}
	if session == nil {
		t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	}
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over TLS is not Secure+HttpOnly+SameSite=Strict: %v", resp.Header["Set-Cookie"])
	}
	req, _ := http.NewRequest("GET", l.Base+"/", nil)
	req.AddCookie(session)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("workspaces page over TLS: %d", resp.StatusCode)
	}
}
