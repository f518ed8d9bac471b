package fakegithub

import "github.com/criu-forge/criu-forge/internal/testutil/upstream"

// AddFixturePR publishes pull request n of the fixture upstream as the
// fixture has it now (after a ForcePush too): open, with its head and
// commits, in the fixture's repository (upstream.Owner/upstream.Name).
func (s *Server) AddFixturePR(f *upstream.Fixture, n int) {
	pr := f.PRs[n]
	var commits []Commit
	for _, c := range pr.Commits {
		commits = append(commits, Commit{SHA: c, Message: "fixture commit"})
	}
	s.AddPR(upstream.Owner, upstream.Name, PR{Number: n, Title: pr.Title, State: "open", HeadSHA: pr.Head, BaseRef: "criu-dev", BaseSHA: pr.Base, Commits: commits})
}
