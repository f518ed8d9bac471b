package rpmmd

import "strconv"

// vercmp compares two version strings with rpm's rpmvercmp algorithm:
// alternating runs of digits and letters, numbers compared as numbers,
// a number newer than letters, "~" sorting before anything and "^" after
// the end. It returns -1, 0 or 1.
func vercmp(a, b string) int {
	if a == b {
		return 0
	}
	for len(a) > 0 || len(b) > 0 {
		a, b = trimSeparators(a), trimSeparators(b)
		if len(a) > 0 && a[0] == '~' || len(b) > 0 && b[0] == '~' {
			if len(a) == 0 || a[0] != '~' {
				return 1
			}
			if len(b) == 0 || b[0] != '~' {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if len(a) > 0 && a[0] == '^' || len(b) > 0 && b[0] == '^' {
			switch {
			case len(a) == 0:
				return -1
			case len(b) == 0:
				return 1
			case a[0] != '^':
				return 1
			case b[0] != '^':
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if len(a) == 0 || len(b) == 0 {
			break
		}
		numeric := isDigit(a[0])
		segA, restA := span(a, numeric)
		segB, restB := span(b, numeric)
		if segB == "" { // b has a run of the other kind here
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			segA, segB = trimZeros(segA), trimZeros(segB)
			if len(segA) != len(segB) {
				if len(segA) > len(segB) {
					return 1
				}
				return -1
			}
		}
		if segA != segB {
			if segA < segB {
				return -1
			}
			return 1
		}
		a, b = restA, restB
	}
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return -1
	}
	return 1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func trimSeparators(s string) string {
	for len(s) > 0 && !isDigit(s[0]) && !isAlpha(s[0]) && s[0] != '~' && s[0] != '^' {
		s = s[1:]
	}
	return s
}

func span(s string, digits bool) (string, string) {
	i := 0
	for i < len(s) && (digits && isDigit(s[i]) || !digits && isAlpha(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

func trimZeros(s string) string {
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	return s
}

// CompareEVR orders two [epoch:]version[-release] strings as rpm does: the
// epoch as a number (missing is 0), then version and release by
// rpmvercmp. It returns -1, 0 or 1.
func CompareEVR(a, b string) int {
	ea, va, ra, _ := splitEVR(a)
	eb, vb, rb, _ := splitEVR(b)
	na, _ := strconv.ParseUint(ea, 10, 64)
	nb, _ := strconv.ParseUint(eb, 10, 64)
	switch {
	case na < nb:
		return -1
	case na > nb:
		return 1
	}
	if c := vercmp(va, vb); c != 0 {
		return c
	}
	return vercmp(ra, rb)
}
