// Package ghrelease publishes built packages as assets of a GitHub release
// of the team's repository: the release is created when its tag has none,
// every file is uploaded once, and a SHA256SUMS asset lists them all, so
// running the same publish again changes nothing.
package ghrelease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/criu-forge/criu-forge/internal/ghapi"
)

// SumsName is the asset that lists the sha256 of every uploaded file.
const SumsName = "SHA256SUMS"

// Options say what to upload where.
type Options struct {
	Client      *ghapi.Client
	Owner, Repo string
	Tag         string
	Name        string // release title; default the tag
	Body        string // release notes
	Files       []string
	Log         io.Writer
}

// Report says what Upload did.
type Report struct {
	URL      string
	Created  bool     // the release was created
	Uploaded []string // asset names
	Skipped  []string // already there with the same size
}

// Upload makes sure the release exists and holds every file and a
// SHA256SUMS of them. An asset of the same name but another size is
// refused, not replaced: a published file does not change under its users
// (bump the package revision instead). SHA256SUMS is the one asset it
// replaces, since it is derived from the files.
func Upload(ctx context.Context, opts Options) (*Report, error) {
	if opts.Client == nil || opts.Owner == "" || opts.Repo == "" || opts.Tag == "" {
		return nil, errors.New("github release: repository owner/name and tag are required")
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	sums, err := checksums(opts.Files)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	rel, err := release(ctx, opts, rep)
	if err != nil {
		return nil, err
	}
	rep.URL = rel.GetHTMLURL()
	assets, err := listAssets(ctx, opts, rel.GetID())
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "criu-forge-sums-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	sumsPath := filepath.Join(tmp, SumsName)
	if err := os.WriteFile(sumsPath, sums, 0o644); err != nil {
		return nil, err
	}
	for _, path := range append(append([]string(nil), opts.Files...), sumsPath) {
		name := filepath.Base(path)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("github release: %w", err)
		}
		if a, ok := assets[name]; ok {
			if int64(a.GetSize()) == fi.Size() {
				rep.Skipped = append(rep.Skipped, name)
				continue
			}
			if name != SumsName {
				return nil, fmt.Errorf("github release %s: asset %s is already there with other content (%d bytes, this one %d): refusing to replace a published file; bump the package revision or delete the asset", opts.Tag, name, a.GetSize(), fi.Size())
			}
			if err := deleteAsset(ctx, opts, a.GetID()); err != nil {
				return nil, err
			}
		}
		if err := upload(ctx, opts, rel.GetID(), path); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "github release %s: uploaded %s\n", opts.Tag, name)
		rep.Uploaded = append(rep.Uploaded, name)
	}
	return rep, nil
}

// checksums renders SHA256SUMS (sha256sum's format) of files, sorted by
// name; two files of the same name are refused, as they would be assets.
func checksums(files []string) ([]byte, error) {
	lines := map[string]string{}
	for _, path := range files {
		name := filepath.Base(path)
		if _, dup := lines[name]; dup || name == SumsName {
			return nil, fmt.Errorf("github release: two files named %s", name)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("github release: %w", err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("github release: read %s: %w", path, err)
		}
		lines[name] = hex.EncodeToString(h.Sum(nil)) + "  " + name + "\n"
	}
	names := make([]string, 0, len(lines))
	for n := range lines {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(lines[n])
	}
	return []byte(b.String()), nil
}

func release(ctx context.Context, opts Options, rep *Report) (*github.RepositoryRelease, error) {
	gh := opts.Client.GitHub()
	var rel *github.RepositoryRelease
	err := opts.Client.Call(ctx, "release "+opts.Tag, func(ctx context.Context) (resp *github.Response, err error) {
		rel, resp, err = gh.Repositories.GetReleaseByTag(ctx, opts.Owner, opts.Repo, opts.Tag)
		return resp, err
	})
	if err == nil {
		return rel, nil
	}
	if !errors.Is(err, ghapi.ErrNotFound) {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = opts.Tag
	}
	err = opts.Client.Call(ctx, "create release "+opts.Tag, func(ctx context.Context) (resp *github.Response, err error) {
		rel, resp, err = gh.Repositories.CreateRelease(ctx, opts.Owner, opts.Repo, &github.RepositoryRelease{
			TagName: github.String(opts.Tag), Name: github.String(name), Body: github.String(opts.Body)})
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	rep.Created = true
	return rel, nil
}

func listAssets(ctx context.Context, opts Options, id int64) (map[string]*github.ReleaseAsset, error) {
	out := map[string]*github.ReleaseAsset{}
	page := &github.ListOptions{PerPage: 100}
	for {
		var batch []*github.ReleaseAsset
		var resp *github.Response
		err := opts.Client.Call(ctx, "assets of release "+opts.Tag, func(ctx context.Context) (r *github.Response, err error) {
			batch, r, err = opts.Client.GitHub().Repositories.ListReleaseAssets(ctx, opts.Owner, opts.Repo, id, page)
			resp = r
			return r, err
		})
		if err != nil {
			return nil, err
		}
		for _, a := range batch {
			out[a.GetName()] = a
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		page.Page = resp.NextPage
	}
}

func upload(ctx context.Context, opts Options, id int64, path string) error {
	return opts.Client.Call(ctx, "upload "+filepath.Base(path), func(ctx context.Context) (*github.Response, error) {
		f, err := os.Open(path) // opened inside: Call may repeat it
		if err != nil {
			return nil, err
		}
		defer f.Close()
		_, resp, err := opts.Client.GitHub().Repositories.UploadReleaseAsset(ctx, opts.Owner, opts.Repo, id,
			&github.UploadOptions{Name: filepath.Base(path)}, f)
		return resp, err
	})
}

func deleteAsset(ctx context.Context, opts Options, id int64) error {
	return opts.Client.Call(ctx, "delete the old "+SumsName, func(ctx context.Context) (*github.Response, error) {
		return opts.Client.GitHub().Repositories.DeleteReleaseAsset(ctx, opts.Owner, opts.Repo, id)
	})
}
