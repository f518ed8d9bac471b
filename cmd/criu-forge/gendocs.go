package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// newGendocsCmd is the hidden verb the release runs (.goreleaser.yaml,
// before hook) to make the man pages and shell completions shipped in
// criu-forge's own packages from the command tree itself, so they never
// drift from the flags.
func newGendocsCmd(g *globals) *cobra.Command {
	var sourceDate int64
	cmd := &cobra.Command{
		Use:    "__gendocs DIR",
		Short:  "Write man pages (DIR/man) and shell completions (DIR/completions) for packaging",
		Hidden: true,
		Example: `  criu-forge __gendocs dist/docs
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) criu-forge __gendocs dist/docs`,
		Args: exactArgs(1, "one output directory"),
		RunE: func(cmd *cobra.Command, args []string) error {
			when := time.Unix(sourceDate, 0).UTC()
			if sourceDate == 0 {
				when = time.Now().UTC()
			}
			return writeDocs(cmd.Root(), args[0], when)
		},
	}
	// The date printed in the man pages; SOURCE_DATE_EPOCH makes them
	// reproducible (https://reproducible-builds.org/specs/source-date-epoch/).
	cmd.Flags().Int64Var(&sourceDate, "source-date-epoch", envInt64("SOURCE_DATE_EPOCH"), "date of the man pages, seconds since 1970 (default $SOURCE_DATE_EPOCH, else now)")
	return cmd
}

// writeDocs writes DIR/man/<command>.1.gz for every visible command and
// DIR/completions/criu-forge.{bash,zsh,fish}.
func writeDocs(root *cobra.Command, dir string, when time.Time) error {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// Defaults taken from the machine running the release would mislead
	// the reader of the man page: say where they come from instead.
	machineDefaults := map[string]string{"cache-dir": "$XDG_CACHE_HOME/criu-forge", "github-api": "$GITHUB_API_URL"}
	for name, def := range machineDefaults {
		if f := root.PersistentFlags().Lookup(name); f != nil {
			f.DefValue = def
		}
	}
	header := &doc.GenManHeader{Title: "CRIU-FORGE", Section: "1", Date: &when, Source: "criu-forge " + version, Manual: "criu-forge manual"}
	var pages []fsutil.NamedFile
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		if !c.IsAvailableCommand() && c != root {
			return nil
		}
		var page bytes.Buffer
		if err := doc.GenMan(c, header, &page); err != nil {
			return fmt.Errorf("man page of %s: %w", c.CommandPath(), err)
		}
		gz, err := gzipped(page.Bytes())
		if err != nil {
			return err
		}
		pages = append(pages, fsutil.NamedFile{Name: strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1.gz", Data: gz})
		for _, sub := range c.Commands() {
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root); err != nil {
		return err
	}
	if err := fsutil.WriteFilesAtomic(filepath.Join(dir, "man"), 0o644, pages...); err != nil {
		return err
	}

	var bash, zsh, fish bytes.Buffer
	if err := root.GenBashCompletionV2(&bash, true); err != nil {
		return fmt.Errorf("bash completion: %w", err)
	}
	if err := root.GenZshCompletion(&zsh); err != nil {
		return fmt.Errorf("zsh completion: %w", err)
	}
	if err := root.GenFishCompletion(&fish, true); err != nil {
		return fmt.Errorf("fish completion: %w", err)
	}
	return fsutil.WriteFilesAtomic(filepath.Join(dir, "completions"), 0o644,
		fsutil.NamedFile{Name: "criu-forge.bash", Data: bash.Bytes()},
		fsutil.NamedFile{Name: "criu-forge.zsh", Data: zsh.Bytes()},
		fsutil.NamedFile{Name: "criu-forge.fish", Data: fish.Bytes()},
	)
}

// gzipped compresses with no name or time in the header (man pages are
// shipped compressed, as Debian policy asks, and stay reproducible).
func gzipped(data []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// envInt64 reads a number from the environment; unset or not a number is 0.
func envInt64(name string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(os.Getenv(name)), 10, 64)
	return n
}
