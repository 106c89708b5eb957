package eventlog

import (
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Summary is what the log says about the boot, for the API: per PCR, what kinds of events made
// it and the names a person recognizes (Secure Boot variables, what the boot loader loaded).
type Summary struct {
	// Banks are the PCR banks the log carries, e.g. ["sha1","sha256"].
	Banks []string `json:"banks"`
	// Events counts the measured events (EV_NO_ACTION ones, which change no PCR, excluded).
	Events int          `json:"events"`
	PCRs   []PCRSummary `json:"pcrs"`
}

// PCRSummary describes the events of one PCR.
type PCRSummary struct {
	PCR    int `json:"pcr"`
	Events int `json:"events"`
	// EventTypes counts events by type name, e.g. {"EV_EFI_VARIABLE_DRIVER_CONFIG":5}.
	EventTypes map[string]int `json:"event_types"`
	// Variables are the UEFI variables measured (EV_EFI_VARIABLE_*), in log order; for PCR 7
	// SecureBoot, PK, KEK, db, dbx.
	Variables []string `json:"variables,omitempty"`
	// Authorities are the variables whose entries authorized a loaded image
	// (EV_EFI_VARIABLE_AUTHORITY), e.g. db, or MokList under shim.
	Authorities []string `json:"authorities,omitempty"`
	// IPL are the descriptions of EV_IPL events (what boot loaders measured: systemd-stub's
	// section names, command lines ...).
	IPL []string `json:"ipl,omitempty"`
	// Actions are the EV_EFI_ACTION strings, e.g. "Exit Boot Services Invocation".
	Actions []string `json:"actions,omitempty"`
	// SHA256 is the PCR value the log replays to in the sha256 bank, hex; empty when the log
	// has no sha256 bank.
	SHA256 string `json:"sha256,omitempty"`
}

// Summarize builds the Summary of a log.
func (l Log) Summarize() Summary {
	s := Summary{}
	for _, a := range l.SpecID.Algorithms {
		s.Banks = append(s.Banks, a.ID.String())
	}
	byPCR := map[int]*PCRSummary{}
	for _, e := range l.Events {
		if e.Type == EVNoAction {
			continue
		}
		s.Events++
		p := byPCR[e.PCR]
		if p == nil {
			p = &PCRSummary{PCR: e.PCR, EventTypes: map[string]int{}}
			byPCR[e.PCR] = p
		}
		p.Events++
		p.EventTypes[e.Type.String()]++
		switch e.Type {
		case EVEFIVariableDriverConfig, EVEFIVariableBoot, EVEFIVariableBoot2:
			if name, ok := variableName(e.Data); ok {
				p.Variables = append(p.Variables, name)
			}
		case EVEFIVariableAuthority:
			if name, ok := variableName(e.Data); ok {
				p.Authorities = append(p.Authorities, name)
			}
		case EVIPL:
			p.IPL = append(p.IPL, text(e.Data))
		case EVEFIAction:
			p.Actions = append(p.Actions, text(e.Data))
		}
	}
	replayed, err := l.Replay(SHA256)
	for _, k := range slices.Sorted(maps.Keys(byPCR)) {
		p := byPCR[k]
		if err == nil && replayed[k] != nil {
			p.SHA256 = hex.EncodeToString(replayed[k])
		}
		s.PCRs = append(s.PCRs, *p)
	}
	return s
}

// variableName reads the UnicodeName of a UEFI_VARIABLE_DATA: VariableName GUID (16 bytes),
// UnicodeNameLength and VariableDataLength (UINT64 each), then the name in UTF-16 characters.
func variableName(b []byte) (string, bool) {
	if len(b) < 32 {
		return "", false
	}
	n := binary.LittleEndian.Uint64(b[16:24])
	if n > uint64(len(b)-32)/2 {
		return "", false
	}
	u := make([]uint16, n)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[32+2*i:])
	}
	return strings.TrimRight(string(utf16.Decode(u)), "\x00"), true
}

// text decodes an event's description: ASCII/UTF-8 from most loaders, UTF-16 from some, with or
// without a terminating NUL.
func text(b []byte) string {
	if len(b) >= 2 && len(b)%2 == 0 && utf16ish(b) {
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return strings.TrimRight(string(utf16.Decode(u)), "\x00")
	}
	s := strings.TrimRight(string(b), "\x00")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// utf16ish: every odd byte of the text is zero, as in UTF-16LE of ASCII.
func utf16ish(b []byte) bool {
	for i := 1; i < len(b); i += 2 {
		if b[i] != 0 {
			return false
		}
	}
	return true
}
