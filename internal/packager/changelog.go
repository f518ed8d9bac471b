package packager

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/goreleaser/chglog"
)

// writeChangelog writes the chglog file nfpm turns into
// /usr/share/doc/<name>/changelog.Debian.gz or the rpm %changelog. The one
// entry describes this build from the series: the upstream version and
// commit, then every patch with its pull request and commits. Its date is
// SOURCE_DATE_EPOCH, so the changelog is reproducible.
func writeChangelog(dir string, s *Spec, p *plannedPackage, v Version) (string, error) {
	changes := chglog.ChangeLogChanges{{Note: changelogUpstream(s.Upstream)}}
	for _, pt := range s.Patches {
		changes = append(changes, &chglog.ChangeLogChange{Note: changelogPatch(pt)})
	}
	entry := &chglog.ChangeLog{
		Semver:   v.For(p.Format),
		Date:     time.Unix(s.SourceDateEpoch, 0).UTC(),
		Packager: s.Maintainer,
		Changes:  changes,
	}
	if p.Format == FormatDeb {
		entry.Deb = &chglog.ChangelogDeb{Urgency: "medium", Distributions: []string{"criu-forge"}}
	}
	entries := chglog.ChangeLogEntries{entry}
	path := filepath.Join(dir, "changelog.yml")
	if err := entries.Save(path); err != nil {
		return "", fmt.Errorf("write changelog of %s: %w", p.Name, err)
	}
	return path, nil
}

func changelogUpstream(u Upstream) string {
	// One fact per line: Debian wants changelog lines under 80 columns.
	note := "CRIU " + u.Version
	if u.Ref != "" {
		note += " (" + u.Ref + ")"
	}
	if u.Commit != "" {
		note += "\ncommit " + u.Commit
	}
	if u.URL != "" {
		note += "\nfrom " + u.URL
	}
	return note
}

func changelogPatch(p Patch) string {
	note := "Patch " + p.Name
	if p.Source != "" {
		note += ": " + p.Source
	}
	if p.URL != "" {
		note += "\n" + p.URL
	}
	if len(p.Commits) > 0 {
		short := make([]string, len(p.Commits))
		for i, c := range p.Commits {
			short[i] = shortCommit(c)
		}
		// Five short ids per line keep the line under 80 columns.
		for i := 0; i < len(short); i += 5 {
			note += "\ncommits " + strings.Join(short[i:min(i+5, len(short))], " ")
		}
	}
	return note
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
