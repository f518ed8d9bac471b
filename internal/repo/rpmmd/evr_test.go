package rpmmd

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestCompareEVRAgainstRPM checks CompareEVR against rpm's own comparison
// of full epoch:version-release strings.
func TestCompareEVRAgainstRPM(t *testing.T) {
	testutil.RequireTool(t, "rpm", "rpm")
	pairs := [][2]string{
		{"1:1.0-1", "2.0-1"}, {"0:4.2.1-1.el9", "4.2.1-1.el9"}, {"4.2.1+forge3-1.el9", "4.2.1-1.el9"},
		{"4.2.1+forge3-1.el9", "4.2.1+forge3-2.el9"}, {"4.2.1+forge10-1.el9", "4.2.1+forge9-1.el9"},
		{"3.19-1.el9", "4.1.1-1.el9"}, {"4.2~rc1-1", "4.2-1"}, {"4.2-1.el9_4", "4.2-1.el9"}, {"2:0.1", "1:9.9-9"},
	}
	for _, p := range pairs {
		out, err := exec.Command("rpm", "--eval", `%{lua: print(rpm.vercmp("`+p[0]+`", "`+p[1]+`"))}`).Output()
		if err != nil {
			t.Fatalf("rpm --eval: %v", err)
		}
		want := strings.TrimSpace(string(out))
		if got := CompareEVR(p[0], p[1]); want != map[int]string{-1: "-1", 0: "0", 1: "1"}[got] {
			t.Errorf("CompareEVR(%s, %s) = %d, rpm says %s", p[0], p[1], got, want)
		}
	}
}
