package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/criu-forge/criu-forge/internal/plan"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestExampleWorkflowUsesThePlan checks that the example GitHub Actions
// workflow reads only matrix fields `plan --json` gives, and has the plan,
// build, publish and watch jobs wired as the README says. Its syntax is
// checked by actionlint in scripts/release-check.
func TestExampleWorkflowUsesThePlan(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "github-actions", "criu-forge.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On   map[string]any `yaml:"on"`
		Jobs map[string]struct {
			Needs any              `yaml:"needs"`
			If    string           `yaml:"if"`
			Steps []map[string]any `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}

	fields := map[string]bool{}
	entry := reflect.TypeOf(plan.MatrixEntry{})
	for i := range entry.NumField() {
		fields[strings.Split(entry.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	for _, m := range regexp.MustCompile(`matrix\.([a-z_]+)`).FindAllStringSubmatch(string(data), -1) {
		if !fields[m[1]] {
			t.Errorf("the workflow reads matrix.%s, which plan --json does not give (it gives %v)", m[1], fields)
		}
	}

	runs := func(job string) string {
		var all []string
		for _, s := range wf.Jobs[job].Steps {
			if r, ok := s["run"].(string); ok {
				all = append(all, r)
			}
		}
		return strings.Join(all, "\n")
	}
	want := map[string]string{
		"plan":    "criu-forge plan",
		"build":   "build \"$RECIPE\" --target",
		"publish": "criu-forge publish",
		"watch":   "criu-forge watch",
	}
	for job, cmd := range want {
		if !strings.Contains(runs(job), cmd) {
			t.Errorf("job %s does not run %q", job, cmd)
		}
	}
	if !strings.Contains(runs("plan"), "jq -c .matrix") || wf.Jobs["build"].Needs != "plan" || wf.Jobs["publish"].Needs != "build" {
		t.Errorf("plan -> build -> publish is not wired")
	}
	if _, ok := wf.On["schedule"]; !ok || !strings.Contains(wf.Jobs["watch"].If, "schedule") {
		t.Errorf("the watch job does not run on the schedule")
	}
}
