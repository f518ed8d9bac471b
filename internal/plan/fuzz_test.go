package plan

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/criu-forge/criu-forge/internal/series"
)

// FuzzRecords feeds arbitrary prepared-source and build records (out/ may
// come from another machine's CI artifact) to the readers: never a panic,
// a head only from a record that names this lock, "current" only for the
// exact key.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(`{"head":"abc","recipeDigest":"r","contentDigest":"c","baseDate":"2025-01-01T00:00:00Z"}`), []byte(`{"key":"k"}`))
	f.Add([]byte(`{"head":"","recipeDigest":"r","contentDigest":"c"}`), []byte(`{"key":""}`))
	f.Add([]byte(`{"baseDate":"not a date"}`), []byte(`[]`))
	f.Add([]byte(`null`), []byte{0xff, 0x00})
	lock := &series.Lock{RecipeDigest: "r", ContentDigest: "c"}
	f.Fuzz(func(t *testing.T, source, record []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "source.json"), source, 0o644); err != nil {
			t.Fatal(err)
		}
		s := sourceOf(lock, filepath.Join(dir, "source"))
		if s.Head != nil && (*s.Head == "" || s.HeadUnknown != "") {
			t.Errorf("head %q with reason %q", *s.Head, s.HeadUnknown)
		}
		if s.Head == nil && s.HeadUnknown == "" {
			t.Errorf("no head and no reason")
		}
		path := filepath.Join(dir, "build.json")
		if err := os.WriteFile(path, record, 0o644); err != nil {
			t.Fatal(err)
		}
		key := "k"
		if got := outputState(path, &key); got == "current" && string(record) != `{"key":"k"}` {
			// Other spellings of the same JSON are fine; check by decoding.
			if st := outputState(path, new(string)); st == "current" {
				t.Errorf("record %q is current for two keys", record)
			}
		}
	})
}
