package profiles

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

// FuzzProfileLoad feeds arbitrary bytes as a profile that may extend a
// fixed valid base. It must never panic; a loaded profile must validate and
// survive JSON; a failure must be diagnostics with text.
func FuzzProfileLoad(f *testing.F) {
	files, _ := filepath.Glob("examples/*.hcl")
	team, _ := filepath.Glob("examples/team/*.hcl")
	for _, p := range append(files, team...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("extends = \"base.hcl\"\ncpus = 3\n"))
	f.Add([]byte("extends = \"main.hcl\"\n"))
	f.Add([]byte("extends = \"base.hcl\"\nprovision {\n  packages = [\"git\", \"vim\"]\n  script = \"echo hi\"\n  user_script = \"true\"\n}\n"))
	f.Add([]byte("image = \"x\"\nshare \"a\" {\n host = \"/a\"\n}\n"))
	f.Add([]byte("image = \"x\"\nwitness \"w\" {\n url = \"https://w.example\"\n key = \"w1+1daa70df+BJ7raN+qQw9rtIjNzO3fdEYTJ2TSVDuT4Is9DY2Z8gQM\"\n}\n"))
	base := []byte("image = \"test\"\nnetwork {\n  mode = \"nat\"\n}\ntracking {\n  slot = \"10m\"\n}\n")
	f.Fuzz(func(t *testing.T, src []byte) {
		fsys := fstest.MapFS{"main.hcl": {Data: src}, "base.hcl": {Data: base}}
		p, err := LoadFS(fsys, "main.hcl")
		if err != nil {
			var de *DiagnosticsError
			if !errors.As(err, &de) || err.Error() == "" {
				t.Fatalf("error is not diagnostics: %T %v", err, err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("loaded profile does not validate: %v", err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q Profile
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatalf("JSON round trip: %v\n%s", err, b)
		}
		if err := q.Validate(); err != nil {
			t.Fatalf("decoded profile does not validate: %v", err)
		}
	})
}
