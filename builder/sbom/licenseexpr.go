package sbom

import "strings"

// translateSynopsis turns a DEP-5 licence synopsis into an SPDX expression. In DEP-5, "and" binds
// tighter than "or" (as in SPDX), and a comma before an operator lowers it below both, so
// "A or B, and C" is (A OR B) AND C. ok is false for a synopsis that breaks that grammar.
func translateSynopsis(s string) (expr string, ok bool) {
	pieces := strings.Split(s, ",")
	var out strings.Builder
	for i, piece := range pieces {
		words := strings.Fields(piece)
		if i > 0 {
			if len(words) == 0 {
				return "", false
			}
			op, isOp := operator(words[0])
			if !isOp {
				return "", false
			}
			out.WriteString(" " + op + " ")
			words = words[1:]
		}
		group, terms, ok := translateGroup(words)
		if !ok {
			return "", false
		}
		if len(pieces) > 1 && (terms > 1 || strings.Contains(group, " OR ") || strings.Contains(group, " AND ")) {
			group = "(" + group + ")"
		}
		out.WriteString(group)
	}
	return out.String(), true
}

// translateGroup translates "L [with X exception] (and|or L [with X exception])..." and reports how
// many terms it joined, so the caller knows whether it needs parentheses.
func translateGroup(words []string) (expr string, terms int, ok bool) {
	var parts []string
	for len(words) > 0 {
		if terms > 0 {
			op, isOp := operator(words[0])
			if !isOp || len(words) < 2 {
				return "", 0, false
			}
			parts = append(parts, op)
			words = words[1:]
		}
		term, rest, ok := translateTerm(words)
		if !ok {
			return "", 0, false
		}
		parts = append(parts, term)
		terms++
		words = rest
	}
	if terms == 0 {
		return "", 0, false
	}
	if terms > 1 {
		// A compound licence such as Perl's must not mix with its neighbours' operators.
		for i := 0; i < len(parts); i += 2 {
			if strings.Contains(parts[i], " ") && !strings.Contains(parts[i], " WITH ") {
				parts[i] = "(" + parts[i] + ")"
			}
		}
	}
	return strings.Join(parts, " "), terms, true
}

// translateTerm reads one licence name and its optional "with <name> exception" clause.
func translateTerm(words []string) (term string, rest []string, ok bool) {
	name := words[0]
	if _, isOp := operator(name); isOp || strings.EqualFold(name, "with") {
		return "", nil, false
	}
	words = words[1:]
	if len(words) == 0 || !strings.EqualFold(words[0], "with") {
		return spdxLicense(name), words, true
	}
	// with <words...> exception
	end := -1
	for i, w := range words[1:] {
		if strings.EqualFold(w, "exception") {
			end = i + 1
			break
		}
	}
	if end < 2 {
		return "", nil, false
	}
	exc := strings.Join(words[1:end], " ")
	id := spdxLicense(name)
	if e := spdxException(id, exc); e != "" && !strings.ContainsAny(id, " ") && !strings.HasPrefix(id, "LicenseRef-") {
		return id + " WITH " + e, words[end+1:], true
	}
	// SPDX 2.3 has no custom exceptions, so an unlisted one makes the whole term a local licence.
	return licenseRef(name + " with " + exc + " exception"), words[end+1:], true
}

// operator maps DEP-5's "and"/"or" to SPDX's.
func operator(w string) (string, bool) {
	switch strings.ToLower(w) {
	case "and":
		return "AND", true
	case "or":
		return "OR", true
	}
	return "", false
}

// licenseRef names a licence SPDX does not list. '+' is spelled out so that GPL-2+-style names keep
// their meaning in the identifier.
func licenseRef(name string) string {
	return "LicenseRef-" + idPart(strings.ReplaceAll(name, "+", "-plus-"))
}
