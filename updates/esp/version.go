package esp

// CompareVersions orders two strings as the UAPI Version Format Specification does, the order
// systemd-boot (strverscmp_improved) sorts entry IDs by: -1 when a sorts before b, 0 when they
// compare equal, +1 after. Digit runs compare as numbers, letter runs letter by letter (upper case
// first), '~' sorts below anything, '-' and '.' below a component, '^' above, and every other
// character ('+', '_') only separates.
func CompareVersions(a, b string) int {
	for {
		a, b = skipSeparators(a), skipSeparators(b)
		// '~' before the end check, as systemd does: "1.0~rc1" is older than "1.0".
		if r, done := special(&a, &b, '~', -1); done {
			return r
		}
		if r, done := bothEnded(a, b); done {
			return r
		}
		if r, done := special(&a, &b, '-', -1); done {
			return r
		}
		if r, done := special(&a, &b, '^', +1); done {
			return r
		}
		if r, done := special(&a, &b, '.', -1); done {
			return r
		}
		if r, done := bothEnded(a, b); done {
			// '-', '^' or '.' ended both strings at once: they are equal so far, and the next
			// round says so.
			return r
		}
		switch {
		case isDigit(a[0]) || isDigit(b[0]):
			var na, nb string
			na, a = digitRun(a)
			nb, b = digitRun(b)
			if r := compareNumbers(na, nb); r != 0 {
				return r
			}
		default:
			var la, lb string
			la, a = letterRun(a)
			lb, b = letterRun(b)
			if r := compareLetters(la, lb); r != 0 {
				return r
			}
			if la == "" && lb == "" {
				// Unreachable with separators skipped, but never loop forever on odd input.
				a, b = a[1:], b[1:]
			}
		}
	}
}

// skipSeparators drops the characters the specification ignores: everything but ASCII letters,
// digits and "-.~^".
func skipSeparators(s string) string {
	for len(s) > 0 && !isDigit(s[0]) && !isLetter(s[0]) && s[0] != '-' && s[0] != '.' && s[0] != '~' && s[0] != '^' {
		s = s[1:]
	}
	return s
}

// bothEnded compares when at least one string is used up: the one with characters left is
// higher.
func bothEnded(a, b string) (int, bool) {
	switch {
	case a == "" && b == "":
		return 0, true
	case a == "":
		return -1, true
	case b == "":
		return 1, true
	}
	return 0, false
}

// special handles a marker character c: when only one string starts with it, that string
// compares as sign says; when both do, both skip it.
func special(a, b *string, c byte, sign int) (int, bool) {
	ha, hb := len(*a) > 0 && (*a)[0] == c, len(*b) > 0 && (*b)[0] == c
	switch {
	case ha && hb:
		*a, *b = (*a)[1:], (*b)[1:]
	case ha:
		return sign, true
	case hb:
		return -sign, true
	}
	return 0, false
}

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func letterRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isLetter(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// compareNumbers compares digit runs as numbers of any length: leading zeros dropped, the longer
// number is the larger, equal lengths compare digit by digit. An empty run is 0.
func compareNumbers(a, b string) int {
	for len(a) > 0 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	switch {
	case len(a) != len(b):
		return sign(len(a) - len(b))
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareLetters compares letter runs byte by byte (ASCII puts upper case first); a run that is
// a prefix of the other is lower.
func compareLetters(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return sign(int(a[i]) - int(b[i]))
		}
	}
	return sign(len(a) - len(b))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
