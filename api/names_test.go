package api

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateWorkspaceName(t *testing.T) {
	good := []string{"a", "acme", "acme-2", "0", strings.Repeat("a", 63)}
	bad := []string{"", "-a", "a-", "Acme", "a_b", "a.b", "a b", strings.Repeat("a", 64), "ä"}
	for _, n := range good {
		if err := ValidateWorkspaceName(n); err != nil {
			t.Errorf("%q: unexpected error %v", n, err)
		}
	}
	for _, n := range bad {
		err := ValidateWorkspaceName(n)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: want ErrInvalid, got %v", n, err)
		}
	}
}

func TestValidateImageName(t *testing.T) {
	for _, n := range []string{"test", "debian-12.7", "x_y"} {
		if err := ValidateImageName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".x", "../x", "a/b", "UP"} {
		if err := ValidateImageName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: want ErrInvalid, got %v", n, err)
		}
	}
}

func TestRemoteErrorIs(t *testing.T) {
	err := error(&RemoteError{Code: CodeNotFound, Message: `no workspace named "x"`})
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		t.Fatalf("class mapping wrong for %v", err)
	}
	code, status := CodeFor(errors.Join(ErrExists))
	if code != CodeExists || status != 409 {
		t.Fatalf("CodeFor(ErrExists) = %s %d", code, status)
	}
}
