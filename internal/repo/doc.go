// Package repo publishes signed apt repositories (and, through
// internal/repo/rpmmd, yum repositories) in a directory any static web
// server or object store can serve. The entry points are Publish and Serve.
//
// # Layout
//
//	pool/main/<p>/<source>/<pkg>_<version>_<arch>.deb   immutable package files
//	dists -> .gen/current/dists                         symbolic links, fixed
//	criu-forge-archive-keyring.gpg -> .gen/current/...  (binary, for signed-by)
//	criu-forge-archive-keyring.asc -> .gen/current/...  (armored)
//	.gen/current -> <n>                                 the live generation
//	.gen/<n>/dists/<suite>/{Release,InRelease,Release.gpg}
//	.gen/<n>/dists/<suite>/main/binary-<arch>/{Packages,Packages.gz,Packages.xz,by-hash/SHA256/*}
//	yum -> .gen/current/yum
//	pool/yum/<release>/<name>-<version>-<release>.<arch>.rpm
//	.gen/<n>/yum/<release>/<arch>/Packages/*.rpm        hard links to pool/yum/
//	.gen/<n>/yum/<release>/<arch>/repodata/             rpmmd: repomd.xml(.asc), primary...
//	.gen/<n>/chunks/                                    compressed Packages chunks, reused
//	.gen/<n>/state.json                                 what generation n holds
//	.gen/intent.json                                    pool files a running publish adds or drops
//	.lock                                               serializes publishers
//
// Clients: apt with
//
//	deb [signed-by=/etc/apt/keyrings/criu-forge-archive-keyring.gpg] http://HOST/ bookworm main
//
// (the keyring downloaded from the repository root, checked out of band);
// dnf with baseurl=http://HOST/yum/el9/$basearch, repo_gpgcheck=1 and
// gpgkey=http://HOST/criu-forge-archive-keyring.asc.
//
// # Suites
//
// An Input names its suite, or the suite comes from the distro tag in the
// package version (4.2.1+forge3~deb12u1 -> deb12 -> bookworm; see
// TargetSuites). Architectures are per package: "all" packages appear in
// every architecture's Packages of their suite, and a suite lists the
// architectures of its packages (plus PublishOptions.Architectures).
//
// An .rpm Input names its yum release (el9, fc41), or it comes from the
// dist tag of the rpm's Release (3.el9 -> el9). noarch rpms go into every
// architecture of their release. Keep applies to apt suites only for now
// (rpm version order lives unexported in rpmmd).
//
// # Never broken, never lost
//
// A pool file name (name, version, architecture) stands for one content for
// ever: publishing the same name with other bytes is refused, the same bytes
// are a no-op. Each publish, under the lock, writes a complete new metadata
// generation beside the live one (unchanged suites are hard-linked, not
// rebuilt), fsyncs it, and switches by renaming a new .gen/current link over
// the old one: a reader sees the old generation or the new one, whole.
// Only after the switch are the old generation and the pool files nothing
// references any more deleted. The indexes of the previous generation stay
// reachable by hash (Acquire-By-Hash) for one more generation, so an apt
// that read the old InRelease just before a switch still finds what it names.
//
// Pool files dropped by Keep are deleted right after the switch (no stale
// file stays): an apt still working from the previous indexes may miss
// such a package and simply updates again.
//
// A publish killed at any point leaves the old or the new generation live;
// the next publish removes what the killed one left (an unswitched
// generation, temporary and unreferenced pool files) and can simply be run
// again. The state of a generation lives inside it, so it can never
// disagree with the live metadata; it holds each package's control data and
// hashes, so adding one package to a thousand reads only the new file.
//
// # Object storage
//
// Stores without symbolic links: upload pool/ first (new files only), then
// the live generation's dists/ with the by-hash files before the
// Packages files and InRelease, Release and Release.gpg last; delete pool
// files that left the state only after that. Clients then see, at every
// moment, signed metadata whose files exist.
package repo
