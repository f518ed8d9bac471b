package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/packager"
	"github.com/criu-forge/criu-forge/internal/verify"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var (
		installed bool
		target    string
		outDir    string
		criuPath  string
		workDir   string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "verify (PACKAGE.deb... | --installed | --target T | --criu PATH)",
		Short: "Prove a criu checkpoints and restores pidfds on this host (needs root)",
		Long: `verify runs a pidfd smoke test with a criu on this host's kernel, as root:
first 'criu check', then for each case a small C workload (compiled with the
host's gcc) is started in its own session, dumped, reaped, restored and asked
to report:

  live     a pidfd of a running child: after restore the fd is again
           anon_inode:[pidfd], fdinfo names the restored child and
           pidfd_send_signal(fd, 0) works
  dead     a pidfd of a reaped child: restored, still naming no process
  outside  a pidfd of a process outside the dumped tree: the dump must fail
           with CRIU's "not a part of process tree" and the process go on

Which criu: PACKAGE.deb (one or more, e.g. criu and libcriu2) are unpacked
with dpkg-deb -x into a scratch folder, without touching dpkg's database, and
that usr/sbin/criu runs on the host with the packages' libraries; --target T
takes the newest .deb packages built for target T in --out; --installed uses
the criu on PATH; --criu a binary of your choice.

It prints a PASS/FAIL line per check and exits 0 when all passed, 1 when any
failed (the work folder with dump.log/restore.log is then kept and named).`,
		Example: `  sudo criu-forge verify out/criu_4.2.1+forge1-1~deb12_amd64.deb
  sudo criu-forge verify --target debian-12
  sudo criu-forge verify --installed --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			chosen := 0
			for _, on := range []bool{len(args) > 0, installed, target != "", criuPath != ""} {
				if on {
					chosen++
				}
			}
			if chosen != 1 {
				return usageError{fmt.Errorf("give exactly one of PACKAGE.deb, --installed, --target T or --criu PATH")}
			}
			ctx := cmd.Context()
			work := workDir
			if work == "" {
				var err error
				if work, err = os.MkdirTemp("", "criu-forge-verify-"); err != nil {
					return err
				}
			}
			var c verify.CRIU
			var err error
			switch {
			case installed:
				c, err = verify.Installed()
			case criuPath != "":
				c = verify.CRIU{Path: criuPath}
			default:
				debs := args
				if target != "" {
					if debs, err = targetDebs(outDir, target); err != nil {
						return err
					}
				}
				c, err = verify.Unpack(ctx, filepath.Join(work, "root"), debs...)
			}
			if err != nil {
				return err
			}
			progress := g.stdout
			if asJSON {
				progress = nil
			}
			rep, err := verify.Run(ctx, verify.Options{CRIU: c, WorkDir: work, Progress: progress})
			if err != nil {
				return fmt.Errorf("%w (work folder %s)", err, work)
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.Summary(g.stdout)
			}
			if rep.Failed() > 0 {
				fmt.Fprintf(g.stderr, "criu-forge verify: %d check(s) failed; logs kept in %s\n", rep.Failed(), work)
				return silentError{1}
			}
			if workDir == "" {
				os.RemoveAll(work)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&installed, "installed", false, "verify the criu on PATH")
	f.StringVar(&target, "target", "", "verify the newest .deb packages built for this target (debian-12 or debian-12-amd64) in --out")
	f.StringVar(&outDir, "out", "out", "output directory of criu-forge build (with --target)")
	f.StringVar(&criuPath, "criu", "", "verify this criu binary")
	f.StringVar(&workDir, "work-dir", "", "where the workload, images and logs go (default: a new temporary folder, removed when all passed)")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON for scripts")
	return cmd
}

// targetDebs returns the .deb files of the newest build for target in
// outDir ("debian-12" matches debian-12-<any arch>).
func targetDebs(outDir, target string) ([]string, error) {
	built, err := packager.ListVersions(outDir)
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, b := range built { // newest first within a target
		t := b.Target
		if target != t.String() && target != t.Distro+"-"+t.Release {
			seen = append(seen, t.String())
			continue
		}
		var debs []string
		for _, a := range b.Artifacts {
			if a.Format == packager.FormatDeb {
				debs = append(debs, a.Path)
			}
		}
		if len(debs) == 0 {
			return nil, fmt.Errorf("target %s in %s has no .deb packages (verify unpacks .deb; install an .rpm and use --installed)", target, outDir)
		}
		return debs, nil
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("nothing built in %s yet: run criu-forge build --target %s first", outDir, target)
	}
	return nil, fmt.Errorf("no build for target %s in %s (built: %v)", target, outDir, seen)
}
