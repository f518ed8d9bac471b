package watch

import (
	"context"
	"testing"

	"github.com/criu-forge/criu-forge/internal/recipe"
)

// BenchmarkWatchNothingNew is the cron case: a recipe behind the newest
// release (its trial kept in the state), two pull requests, nothing changed
// since the last run. Every GitHub answer is a 304 and no git work is done;
// the issue asks for well under a second per run.
func BenchmarkWatchNothingNew(b *testing.B) {
	e := newEnv(b)
	e.recipe("v4.1.1", "pr: 101", "pr: 102", "patch: 0001-notes.patch")
	e.release("v4.2.1")
	recipes := []*recipe.Recipe{e.load()}
	opts := e.opts()
	ctx := context.Background()
	if p, err := Run(ctx, recipes, opts); err != nil || p.Recipes[0].Error != "" || p.Recipes[0].Rebase == nil {
		b.Fatalf("first run: %v %+v", err, p)
	}
	e.gh.ResetLog()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := Run(ctx, recipes, opts)
		if err != nil || p.Recipes[0].Error != "" {
			b.Fatal(err, p.Recipes[0].Error)
		}
	}
	b.StopTimer()
	st := e.gh.Stats()
	if st.NotModified != st.Requests {
		b.Errorf("%d of %d requests were not 304s", st.Requests-st.NotModified, st.Requests)
	}
	b.ReportMetric(float64(st.Requests)/float64(b.N), "requests/op")
	b.ReportMetric(float64(st.NotModified)/float64(b.N), "304s/op")
}
