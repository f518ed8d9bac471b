package ghrelease

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-forge/criu-forge/internal/ghapi"
	"github.com/criu-forge/criu-forge/internal/testutil/fakegithub"
)

func files(t *testing.T, contents map[string]string) []string {
	dir := t.TempDir()
	var out []string
	for name, body := range contents {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func TestUploadIsIdempotent(t *testing.T) {
	srv := fakegithub.New(t)
	c, err := ghapi.New(ghapi.Options{BaseURL: srv.URL(), Token: "ghp_never_printed", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opts := Options{Client: c, Owner: "platform", Repo: "criu", Tag: "criu-4.2.1+forge3",
		Files: files(t, map[string]string{"criu_4.2.1+forge3-1~deb12_amd64.deb": "deb bytes", "criu_debian-12.manifest.json": "{}"})}

	rep, err := Upload(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Created || len(rep.Uploaded) != 3 || len(rep.Skipped) != 0 {
		t.Errorf("first upload: %+v", rep)
	}
	rels := srv.Releases("platform", "criu")
	if len(rels) != 1 || len(rels[0].Assets) != 3 {
		t.Fatalf("server has %+v", rels)
	}
	for _, a := range rels[0].Assets {
		if a.Name == SumsName && !strings.Contains(string(a.Data), "  criu_4.2.1+forge3-1~deb12_amd64.deb\n") {
			t.Errorf("SHA256SUMS: %q", a.Data)
		}
	}

	again, err := Upload(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || len(again.Uploaded) != 0 || len(again.Skipped) != 3 || len(srv.Releases("platform", "criu")[0].Assets) != 3 {
		t.Errorf("second upload duplicated something: %+v", again)
	}

	// One more package: it is added and SHA256SUMS replaced, nothing doubled.
	opts.Files = append(opts.Files, files(t, map[string]string{"criu_4.2.1+forge3-1~ubuntu24.04_amd64.deb": "other deb"})...)
	third, err := Upload(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(third.Uploaded) != 2 || len(srv.Releases("platform", "criu")[0].Assets) != 4 {
		t.Errorf("third upload: %+v, assets %d", third, len(srv.Releases("platform", "criu")[0].Assets))
	}

	// The same name with other content is refused, never replaced.
	changed := files(t, map[string]string{"criu_4.2.1+forge3-1~deb12_amd64.deb": "rebuilt, different bytes"})
	_, err = Upload(ctx, Options{Client: c, Owner: "platform", Repo: "criu", Tag: opts.Tag, Files: changed})
	if err == nil || !strings.Contains(err.Error(), "already there with other content") {
		t.Errorf("changed asset: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "ghp_never_printed") {
		t.Error("the token is in the error")
	}
}

func TestUploadRefusesBadInput(t *testing.T) {
	srv := fakegithub.New(t)
	c, err := ghapi.New(ghapi.Options{BaseURL: srv.URL(), Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	a := files(t, map[string]string{"x.deb": "a"})
	b := files(t, map[string]string{"x.deb": "b"})
	for name, opts := range map[string]Options{
		"no tag":       {Client: c, Owner: "o", Repo: "r", Files: a},
		"same name":    {Client: c, Owner: "o", Repo: "r", Tag: "t", Files: append(a, b...)},
		"missing file": {Client: c, Owner: "o", Repo: "r", Tag: "t", Files: []string{"/nonexistent/x.deb"}},
		"named SUMS":   {Client: c, Owner: "o", Repo: "r", Tag: "t", Files: files(t, map[string]string{SumsName: "x"})},
	} {
		if _, err := Upload(context.Background(), opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if n := len(srv.Releases("o", "r")); n != 0 {
		t.Errorf("bad input created %d releases", n)
	}
}
