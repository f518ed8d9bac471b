package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/criu-forge/criu-forge/internal/fsutil"
)

// stateFile holds the trial results across runs, under StateDir.
const stateFile = "state.json"

// maxTrials bounds the kept trial results: old inputs never come back.
const maxTrials = 64

const stateVersion = 1

type state struct {
	Version int                       `json:"version"`
	Trials  map[string]*contentResult `json:"trials"`
	Order   []string                  `json:"order"` // keys, oldest first
	// Notified is the digest of the last plan sent to a webhook or
	// command by the daemon, so that an unchanged plan is not sent again.
	Notified string `json:"notified,omitempty"`
}

// loadState reads the state; a missing, unreadable or foreign one is an
// empty state (it only saves work, it decides nothing).
func loadState(dir string) *state {
	st := &state{Version: stateVersion, Trials: map[string]*contentResult{}}
	if dir == "" {
		return st
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st
	}
	var got state
	if json.Unmarshal(data, &got) != nil || got.Version != stateVersion || got.Trials == nil {
		return st
	}
	return &got
}

func (s *state) put(key string, r *contentResult) {
	if _, ok := s.Trials[key]; !ok {
		s.Order = append(s.Order, key)
	}
	s.Trials[key] = r
	for len(s.Order) > maxTrials {
		delete(s.Trials, s.Order[0])
		s.Order = s.Order[1:]
	}
}

func (s *state) save(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("watch state %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, stateFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("watch state: %w", err)
	}
	return nil
}

// lockFile keeps one watch per state directory.
const lockFile = "watch.lock"

// Instance is the hold of one watch on its state directory.
type Instance struct{ lock *fsutil.Lock }

// Claim takes the state directory for this process: a second watch on the
// same directory (a daemon and a timer, two cron runs) gets an error naming
// the lock file.
func Claim(stateDir string) (*Instance, error) {
	if stateDir == "" {
		return nil, errors.New("watch: no state directory given")
	}
	path := filepath.Join(stateDir, lockFile)
	l, ok, err := fsutil.TryAcquire(path)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("another criu-forge watch holds %s: one watch per state directory; stop it, or give this one another --state-dir", path)
	}
	return &Instance{lock: l}, nil
}

// Release lets another watch take the state directory.
func (i *Instance) Release() error {
	if i == nil {
		return nil
	}
	return i.lock.Release()
}
