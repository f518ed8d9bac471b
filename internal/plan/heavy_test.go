package plan

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/criu-forge/criu-forge/internal/pipeline"
	"github.com/criu-forge/criu-forge/internal/recipe"
	"github.com/criu-forge/criu-forge/internal/series"
	"github.com/criu-forge/criu-forge/internal/testutil"
)

// TestPlanAgreesWithRealBuild builds a tiny project for debian-12 with the
// real pipeline (bubblewrap, the shared cached builder), then plans it: the
// plan's build key must be the one the build recorded, so a CI job that
// trusts it skips exactly when the build would have been reused.
func TestPlanAgreesWithRealBuild(t *testing.T) {
	testutil.RequireHeavy(t)
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "bwrap", "bubblewrap")
	testutil.RequireTool(t, "mmdebstrap", "mmdebstrap")

	up := testutil.TinyUpstream(t)

	root := t.TempDir()
	path := testutil.TinyRecipe(t, root, "hello-plan", up, "")
	r, _, err := recipe.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sopts := series.Options{CacheDir: testutil.TestCacheDir(t)}
	if _, err := series.Sync(ctx, r, sopts); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	opts := Options{CacheDir: sopts.CacheDir, OutDir: out, Runner: "bubblewrap", ToolVersion: "test"}
	before, err := Make(r, opts)
	if err != nil {
		t.Fatal(err)
	}

	res, err := pipeline.Build(ctx, r, pipeline.Options{Series: sopts, OutDir: out, Runner: "bubblewrap"})
	if err != nil || res.Targets[0].Err != nil {
		t.Fatalf("build: %v %v", err, res.Targets[0].Err)
	}
	after, err := Make(r, opts)
	if err != nil {
		t.Fatal(err)
	}
	pt := after.Targets[0]
	if pt.BuildKey == nil || *pt.BuildKey != res.Targets[0].Build.Key || pt.Output != "current" {
		t.Fatalf("plan says build key %v (%s), output %s; the build recorded %s", pt.BuildKey, pt.BuildKeyUnknown, pt.Output, res.Targets[0].Build.Key)
	}
	if pt.BuilderID != res.Targets[0].Build.BuilderID {
		t.Errorf("builder %s, the build used %s", pt.BuilderID, res.Targets[0].Build.BuilderID)
	}
	if before.Targets[0].InputKey != pt.InputKey {
		t.Errorf("the input key changed by building: %s -> %s", before.Targets[0].InputKey, pt.InputKey)
	}
}
