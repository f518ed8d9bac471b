package source

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/criu-forge/criu-forge/internal/testutil"
)

// BenchmarkImportCRIU imports the CRIU 4.2.1 tarball into a fresh cache and,
// in the same run, does what a user would do instead: tar -xJf, git add -A,
// git commit. It reports both times and their ratio (git-ms / import-ms:
// above 1 means the import is faster).
//
//	go test -run '^$' -bench ImportCRIU -benchtime 5x ./internal/source
func BenchmarkImportCRIU(b *testing.B) {
	testutil.RequireTool(b, "git", "git")
	testutil.RequireTool(b, "xz", "xz-utils")
	tarball := testutil.CRIUTarball(b, "4.2.1")
	sum := fileSHA256(b, tarball)
	var ours, theirs time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		start := time.Now()
		if _, err := Fetch(context.Background(), []Alternative{{Tarball: &TarballSpec{URL: tarball, SHA256: sum}}}, Options{CacheDir: filepath.Join(dir, "cache")}); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		work := filepath.Join(dir, "work")
		if err := os.Mkdir(work, 0o755); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for _, args := range [][]string{
			{"tar", "-xJf", tarball, "--strip-components=1"},
			{"git", "init", "-q"},
			{"git", "add", "-A", "--force"},
			{"git", "-c", "user.name=b", "-c", "user.email=b@example.org", "commit", "-q", "-m", "import"},
		} {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = work
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		theirs += time.Since(start)
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "import-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/float64(b.N), "tar+git-ms/op")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup")
}

// BenchmarkDecompressXZ compares the pure-Go xz decoder with the xz
// program on the CRIU 4.2.1 tarball; it is why useXZBinary defaults on.
func BenchmarkDecompressXZ(b *testing.B) {
	tarball := testutil.CRIUTarball(b, "4.2.1")
	b.Run("go", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.Open(tarball)
			if err != nil {
				b.Fatal(err)
			}
			r, err := xz.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
	b.Run("xz-binary", func(b *testing.B) {
		bin := testutil.RequireTool(b, "xz", "xz-utils")
		for i := 0; i < b.N; i++ {
			f, err := os.Open(tarball)
			if err != nil {
				b.Fatal(err)
			}
			r, done, err := xzProgram(context.Background(), bin, f)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			if err := done(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	})
}
