package upstream

// Owner and Name are the GitHub repository the fixture stands for.
const Owner, Name = "checkpoint-restore", "criu"

// NotesPatch is a local patch file (git format-patch output) that adds one
// file, so it applies on v4.1.1 and v4.2.1 alike.
const NotesPatch = `From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Sam Packager <sam@example.org>
Date: Mon, 2 Mar 2026 10:00:00 +0000
Subject: [PATCH] Add a note for packagers

---
 FORGE-NOTES | 1 +
 1 file changed, 1 insertion(+)
 create mode 100644 FORGE-NOTES

diff --git a/FORGE-NOTES b/FORGE-NOTES
new file mode 100644
index 0000000..3b18e51
--- /dev/null
+++ b/FORGE-NOTES
@@ -0,0 +1 @@
+built by criu-forge
-- 
2.39.5
`
