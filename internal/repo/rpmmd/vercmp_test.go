package rpmmd

import (
	"fmt"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

var vercmpCases = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.0a", -1},
	{"1.0~rc1", "1.0", -1},
	{"1.0~rc1", "1.0~rc2", -1},
	{"1.0^git1", "1.0", 1},
	{"1.0^git1", "1.0.1", -1},
	{"1.0^", "1.0^git", -1},
	{"2.34", "2.4", 1},
	{"GLIBC_2.34", "GLIBC_2.4", 1},
	{"010", "10", 0},
	{"1.a", "1.1", -1},
	{"a", "b", -1},
	{"1_0", "1.0", 0},
	{"1.0.0", "1.0", 1},
	{"4.2.1", "4.10", -1},
	{"1..0", "1.0", 0},
	{"~~", "~", -1},
}

func TestVercmp(t *testing.T) {
	for _, c := range vercmpCases {
		if got := vercmp(c.a, c.b); got != c.want {
			t.Errorf("vercmp(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := vercmp(c.b, c.a); got != -c.want {
			t.Errorf("vercmp(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestVercmpMatchesRPM checks the table against rpm's own rpmvercmp.
func TestVercmpMatchesRPM(t *testing.T) {
	testutil.RequireTool(t, "rpm", "rpm")
	var lua strings.Builder
	for _, c := range vercmpCases {
		fmt.Fprintf(&lua, "print(rpm.vercmp(%q, %q) .. \" \") ", c.a, c.b)
	}
	out := strings.Fields(testutil.Run(t, "", "rpm", "--eval", "%{lua: "+lua.String()+"}"))
	if len(out) != len(vercmpCases) {
		t.Fatalf("rpm printed %d results for %d cases: %v", len(out), len(vercmpCases), out)
	}
	for i, c := range vercmpCases {
		if got := fmt.Sprint(vercmp(c.a, c.b)); got != out[i] {
			t.Errorf("vercmp(%q, %q) = %s, rpm says %s", c.a, c.b, got, out[i])
		}
	}
}
