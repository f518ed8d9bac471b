package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/criu-forge/criu-forge/internal/doctor"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var (
		pid       int
		container string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "doctor (--pid PID | --container NAME) [--json]",
		Short: "Find what the installed criu cannot checkpoint in a live process tree, and what fixes it",
		Long: `doctor walks a process tree (PID and its descendants, or a container's init
found with docker or podman inspect) and reads every file descriptor from
/proc: pidfds (CRIU >= 4.1), PIDFD_THREAD pidfds and pidfds of processes
outside the tree (no CRIU release), io_uring, userfaultfd, perf_event and
other anon inodes CRIU rejects. It reports each process and fd with the CRIU
version it needs, the installed criu's version and 'criu check' verdict, the
shipped recipe that fixes it, and workarounds when a rebuild is not an
option (stop IBus in an XFCE/VNC session, dump only a clean subtree).

Run it as root to see other users' processes. Exit status: 0 when the
installed criu can dump the tree, 1 when it cannot (or none is installed,
or 'criu check' fails), 2 on a usage error.`,
		Example: `  sudo criu-forge doctor --container desktop
  sudo criu-forge doctor --pid 812 --json`,
		Args: exactArgs(0, "no arguments: --pid PID or --container NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (pid > 0) == (container != "") {
				return usageError{fmt.Errorf("give exactly one of --pid PID or --container NAME")}
			}
			rep, err := doctor.Inspect(cmd.Context(), doctor.Options{Pid: pid, Container: container})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.Print(g.stdout)
			}
			if !rep.CanDump {
				return silentError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&pid, "pid", 0, "root of the process tree to inspect")
	f.StringVar(&container, "container", "", "docker or podman container whose processes to inspect")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON for scripts")
	return cmd
}
