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

func TestManPageTools(t *testing.T) {
	tests := []struct {
		deps []string
		vars map[string]string
		want bool
	}{
		{[]string{"gcc"}, nil, false},
		{[]string{"asciidoc-base", "xmlto"}, nil, true},
		{[]string{"asciidoctor"}, nil, false}, // xmlto still needed without USE_ASCIIDOCTOR
		{[]string{"asciidoctor"}, map[string]string{"USE_ASCIIDOCTOR": "1"}, true},
		{[]string{"rubygem-asciidoctor"}, map[string]string{"USE_ASCIIDOCTOR": "1"}, true},
	}
	for _, tt := range tests {
		if got := hasManPageTools(tt.deps, tt.vars); got != tt.want {
			t.Errorf("hasManPageTools(%v, %v) = %v, want %v", tt.deps, tt.vars, got, tt.want)
		}
	}
}
