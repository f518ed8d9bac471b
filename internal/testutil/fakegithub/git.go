package fakegithub

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Helpers that fill the fake from a real git repository (such as the
// fixture upstream of internal/testutil/upstream), so that what the API
// says and what git says cannot disagree.

// git runs the git command in dir and returns its output.
func git(dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// AddTagsFromGit adds every tag of the repository at gitDir, newest first,
// with the commit it points to (an annotated tag is peeled: GitHub's tag
// list names the commit, not the tag object).
func (s *Server) AddTagsFromGit(owner, repo, gitDir string) error {
	out, err := git(gitDir, "for-each-ref", "--sort=-creatordate",
		"--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)", "refs/tags")
	if err != nil {
		return err
	}
	var tags []Tag
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\x00")
		if len(f) != 3 {
			continue
		}
		commit := f[1]
		if f[2] != "" {
			commit = f[2]
		}
		tags = append(tags, Tag{Name: f[0], CommitSHA: commit})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repo(owner, repo)
	r.tags = append(tags, r.tags...)
	return nil
}

// AddPRFromGit adds pull request pr with its head read from
// refs/pull/N/head of gitDir and its commits from git: those between
// pr.BaseSHA (or, when empty, the merge base of the head and pr.BaseRef)
// and the head, oldest first.
func (s *Server) AddPRFromGit(owner, repo, gitDir string, pr PR) error {
	head, err := git(gitDir, "rev-parse", "--verify", fmt.Sprintf("refs/pull/%d/head^{commit}", pr.Number))
	if err != nil {
		return err
	}
	pr.HeadSHA = strings.TrimSpace(head)
	if pr.BaseSHA == "" {
		if pr.BaseRef == "" {
			return fmt.Errorf("fakegithub: pull request %d needs BaseRef or BaseSHA", pr.Number)
		}
		base, err := git(gitDir, "merge-base", pr.HeadSHA, pr.BaseRef)
		if err != nil {
			return err
		}
		pr.BaseSHA = strings.TrimSpace(base)
	}
	if pr.Commits, err = commitsBetween(gitDir, pr.BaseSHA, pr.HeadSHA); err != nil {
		return err
	}
	if pr.State == "" {
		pr.State = "open"
	}
	s.AddPR(owner, repo, pr)
	return nil
}

// commitsBetween lists base..head, oldest first, as GitHub lists a pull
// request's commits.
func commitsBetween(gitDir, base, head string) ([]Commit, error) {
	out, err := git(gitDir, "log", "--reverse", "--format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%B%x1e", base+".."+head, "--")
	if err != nil {
		return nil, err
	}
	var commits []Commit
	for _, rec := range strings.Split(out, "\x1e") {
		f := strings.SplitN(strings.TrimLeft(rec, "\n"), "\x00", 6)
		if len(f) != 6 {
			continue
		}
		date, err := time.Parse(time.RFC3339, f[4])
		if err != nil {
			return nil, fmt.Errorf("commit %s: author date %q: %v", f[0], f[4], err)
		}
		commits = append(commits, Commit{SHA: f[0], Parents: strings.Fields(f[1]), AuthorName: f[2],
			AuthorEmail: f[3], AuthorDate: date, Message: strings.TrimRight(f[5], "\n")})
	}
	return commits, nil
}

// gitCompare computes what GitHub's compare says from a real repository.
func gitCompare(gitDir, base, head string) (Comparison, error) {
	for _, ref := range []string{base, head} {
		// Refs come from the request path: never let one pass as an option.
		if strings.HasPrefix(ref, "-") {
			return Comparison{}, fmt.Errorf("bad ref %q", ref)
		}
		if _, err := git(gitDir, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
			return Comparison{}, fmt.Errorf("unknown ref %q", ref)
		}
	}
	count := func(rangeSpec string) (int, error) {
		out, err := git(gitDir, "rev-list", "--count", rangeSpec, "--")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(out))
	}
	ahead, err := count(base + ".." + head)
	if err != nil {
		return Comparison{}, err
	}
	behind, err := count(head + ".." + base)
	if err != nil {
		return Comparison{}, err
	}
	c := Comparison{AheadBy: ahead, BehindBy: behind}
	switch {
	case ahead == 0 && behind == 0:
		c.Status = "identical"
	case behind == 0:
		c.Status = "ahead"
	case ahead == 0:
		c.Status = "behind"
	default:
		c.Status = "diverged"
	}
	return c, nil
}
