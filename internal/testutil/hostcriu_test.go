package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

func TestHostCRIU(t *testing.T) {
	bin := HostCRIU(t, "4.2.1")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Version: 4.2.1") {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
}
