package watch

import (
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzEditRecipe: the recipe editor works on text at positions the YAML
// parser reports; whatever the file holds, it never panics, and what it
// returns still parses.
func FuzzEditRecipe(f *testing.F) {
	f.Add("upstream:\n  version: 4.1.1\n  sources:\n    - git: {url: x, ref: v4.1.1, commit: abc}\nseries:\n  - pr: 1\n  - patch: a.patch\n", "4.2", uint8(0))
	f.Add("upstream:\n  version: \"4.1\" # c\n  sources:\n  - git:\n      ref: 'v4.1'\nseries:\n# one\n- pr: 1\n\n- pr: 2\n", "4.2.1", uint8(1))
	f.Add("series: [{pr: 1}]\n", "", uint8(0))
	f.Add("upstream: {version: 4.1, sources: [{git: {ref: \"v\\\"4\"}}]}\nseries:\n  -\n    pr: 1\n", "x'y\"z", uint8(0))
	f.Fuzz(func(t *testing.T, data, version string, drop uint8) {
		ed := recipeEdit{Version: version, Ref: version, Commit: version, Drop: []int{int(drop % 4)}}
		out, err := editRecipe([]byte(data), ed)
		if err != nil {
			return
		}
		var n yaml.Node
		if err := yaml.Unmarshal(out, &n); err != nil {
			t.Fatalf("edited text does not parse: %v\n--- in\n%s\n--- out\n%s", err, data, out)
		}
	})
}
