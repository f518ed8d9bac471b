package packager

import (
	"bufio"
	"bytes"
	"os"
	"path"
	"regexp"
	"strings"
)

// Script is an executable text file of the staged tree with a "#!" line.
type script struct {
	Interpreter string // absolute path, after rewriting "/usr/bin/env X"
	Rewritten   []byte // the file with its "#!" line rewritten, or nil
}

var interpreterRE = regexp.MustCompile(`^/[A-Za-z0-9_./+-]+$`)

// readScript reads the "#!" line of an executable file. Like dh_python3
// and Fedora's brp-mangle-shebangs, "#!/usr/bin/env python3" becomes
// "#!/usr/bin/python3": env would pick whatever python3 comes first in the
// user's PATH, and the package depends on the distro's.
func readScript(file string) (script, bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return script{}, false, err
	}
	if !bytes.HasPrefix(data, []byte("#!")) {
		return script{}, false, nil
	}
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	fields := strings.Fields(string(first[2:]))
	if len(fields) == 0 || !interpreterRE.MatchString(fields[0]) {
		return script{}, false, nil
	}
	s := script{Interpreter: fields[0]}
	if path.Base(fields[0]) == "env" && len(fields) >= 2 && !strings.HasPrefix(fields[1], "-") && !strings.Contains(fields[1], "/") {
		s.Interpreter = "/usr/bin/" + fields[1]
		line := "#!" + s.Interpreter
		if len(fields) > 2 {
			line += " " + strings.Join(fields[2:], " ")
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		w.WriteString(line + "\n")
		w.Write(rest)
		w.Flush()
		s.Rewritten = b.Bytes()
	}
	if !interpreterRE.MatchString(s.Interpreter) {
		return script{}, false, nil
	}
	return s, true, nil
}

// interpreterDependency is the relation a script's interpreter needs: on
// Debian the package of the interpreters that are not essential (python3,
// perl); on rpm the interpreter's path, as rpm's automatic requires write.
func interpreterDependency(format, interpreter string) (name, relation string) {
	if format == FormatRPM {
		return interpreter, interpreter
	}
	switch base := path.Base(interpreter); {
	case strings.HasPrefix(base, "python3"):
		return "python3", "python3"
	case base == "perl":
		return "perl", "perl"
	}
	return "", "" // sh, bash, dash: essential
}
