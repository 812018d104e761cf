package api

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadExecFrames(t *testing.T) {
	in := `{"stdout":"aGVsbG8K"}` + "\n" + `{"stderr":"b29wcwo="}` + "\n" + `{"exit":3}` + "\n"
	var out, errb bytes.Buffer
	code, err := ReadExecFrames(strings.NewReader(in), &out, &errb)
	if err != nil || code != 3 || out.String() != "hello\n" || errb.String() != "oops\n" {
		t.Fatalf("code %d err %v out %q err %q", code, err, out.String(), errb.String())
	}
	if _, err := ReadExecFrames(strings.NewReader(`{"stdout":"aGk="}`+"\n"), &out, &errb); err == nil || !strings.Contains(err.Error(), "before the command's exit status") {
		t.Fatalf("cut stream: %v", err)
	}
	if _, err := ReadExecFrames(strings.NewReader(`{"error":"guest agent gone"}`+"\n"), &out, &errb); err == nil || !strings.Contains(err.Error(), "guest agent gone") {
		t.Fatalf("error frame: %v", err)
	}
}

func TestExecRequestValidate(t *testing.T) {
	for _, bad := range []ExecRequest{{}, {Argv: []string{""}}, {Argv: []string{"ls"}, User: "Root;x"}, {Argv: make([]string, MaxExecArgs+1)}} {
		if bad.Validate() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	r := ExecRequest{Argv: []string{"scrot", "-o", "/tmp/a b.png"}, User: "root", Stdin: true}
	back, err := ExecRequestFrom(r.Query())
	if err != nil || strings.Join(back.Argv, "|") != "scrot|-o|/tmp/a b.png" || back.User != "root" || !back.Stdin {
		t.Fatalf("query round trip: %+v %v", back, err)
	}
}

// FuzzReadExecFrames: whatever the stream, no panic, and an exit status
// only from a frame that carries one.
func FuzzReadExecFrames(f *testing.F) {
	f.Add([]byte(`{"stdout":"aGVsbG8K"}` + "\n" + `{"exit":0}` + "\n"))
	f.Add([]byte(`{"error":"x"}`))
	f.Add([]byte("{\"exit\":-1}\n"))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out, errb bytes.Buffer
		code, err := ReadExecFrames(bytes.NewReader(b), &out, &errb)
		if err != nil && code != 0 {
			t.Fatalf("error %v with code %d", err, code)
		}
	})
}
