package build

import "testing"

// Every build, with default or recipe steps, ends by stripping the staged
// ELF files inside the builder, as dh_strip and brp-strip would.
func TestStepsEndWithStrip(t *testing.T) {
	for _, steps := range [][]string{nil, {"make", "make install DESTDIR=$DESTDIR"}} {
		got := Spec{Steps: steps, Target: Target{Distro: "debian", Release: "bookworm"}}.steps()
		if got[len(got)-1] != stripStep {
			t.Errorf("steps %v do not end with the strip step: %v", steps, got)
		}
	}
}
