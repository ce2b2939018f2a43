package deploytest

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// deployDir is the repository's deploy/ folder, the files under test.
const deployDir = "../../deploy"

// deployFile returns the absolute path of a file under deploy/.
func deployFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(deployDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tool finds an executable of a Debian package on PATH or in the sbin directories a non-root
// PATH may lack, and fails the test, saying what to install, when it is not there.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found: install the Debian package %s (apt-get install %s; .ci/run does); this test runs the shipped deploy/ files in it",
		name, debianPackage, debianPackage)
	return ""
}
