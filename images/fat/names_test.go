package fat

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"BOOTX64.EFI", ""},
		{"loader.conf", ""},
		{"a name with spaces.txt", ""},
		{"Ünïcode ✓", ""},
		{strings.Repeat("x", 255), ""},
		{strings.Repeat("x", 256), "255"},
		{"", "empty"},
		{".", "not allowed"},
		{"..", "not allowed"},
		{"trailing.", "ends with a dot"},
		{"trailing ", "ends with a dot or space"},
		{"a:b", "does not allow"},
		{"a\\b", "does not allow"},
		{"tab\there", "does not allow"},
		{"bad\xffutf8", "UTF-8"},
	}
	for _, tt := range tests {
		err := validName(tt.name)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("validName(%q) = %v, want nil", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("validName(%q) = %v, want error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestExactShortName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" when no exact 8.3 form exists
	}{
		{"BOOTX64.EFI", "BOOTX64 EFI"},
		{"EFI", "EFI        "},
		{"loader", "LOADER     "},
		{"Linux.Efi", "LINUX   EFI"},
		{"12345678.123", "12345678123"},
		{"123456789", ""},
		{"a.conf", ""},
		{"a.b.c", ""},
		{".hidden", ""},
		{"with space", ""},
		{"plus+sign", ""},
		{"ümlaut", ""},
	}
	for _, tt := range tests {
		got, ok := exactShortName(tt.name)
		if tt.want == "" {
			if ok {
				t.Errorf("exactShortName(%q) = %q, want none", tt.name, got[:])
			}
			continue
		}
		if !ok || string(got[:]) != tt.want {
			t.Errorf("exactShortName(%q) = %q, %v, want %q", tt.name, got[:], ok, tt.want)
		}
	}
}

func TestAssignShortNames(t *testing.T) {
	tests := []struct {
		names     []string
		wantShort []string
		wantLong  []bool
	}{
		{
			names:     []string{"BOOTX64.EFI", "loader", "ballast-a.conf"},
			wantShort: []string{"BOOTX64.EFI", "LOADER", "BALLAS~1.CON"},
			wantLong:  []bool{false, true, true},
		},
		{
			// Same basis: tails count up in order.
			names:     []string{"longfilename1.txt", "longfilename2.txt"},
			wantShort: []string{"LONGFI~1.TXT", "LONGFI~2.TXT"},
			wantLong:  []bool{true, true},
		},
		{
			// A generated name must not take an exact name listed later.
			names:     []string{"longfilename.txt", "LONGFI~1.TXT"},
			wantShort: []string{"LONGFI~2.TXT", "LONGFI~1.TXT"},
			wantLong:  []bool{true, false},
		},
		{
			names:     []string{".profile", "a b.c d e", "x+y=z"},
			wantShort: []string{"PROFIL~1", "AB~1.CDE", "X_Y_Z~1"},
			wantLong:  []bool{true, true, true},
		},
	}
	for _, tt := range tests {
		var nodes []*node
		for _, n := range tt.names {
			nodes = append(nodes, &node{name: n})
		}
		if err := assignShortNames(nodes); err != nil {
			t.Fatalf("assignShortNames(%q): %v", tt.names, err)
		}
		for i, n := range nodes {
			if got := n.short.String(); got != tt.wantShort[i] || n.longName != tt.wantLong[i] {
				t.Errorf("%q: short %q long %v, want %q long %v", n.name, got, n.longName, tt.wantShort[i], tt.wantLong[i])
			}
		}
	}
}

func TestTailShortensBase(t *testing.T) {
	if got := tailedShortName("LONGFILE", "TXT", 12).String(); got != "LONGF~12.TXT" {
		t.Errorf("tailedShortName = %q, want LONGF~12.TXT", got)
	}
}

func TestShortNameChecksum(t *testing.T) {
	// Worked by hand with the rotate-right-and-add rule over "BOOTX64 EFI".
	var s shortName
	copy(s[:], "BOOTX64 EFI")
	var want byte
	for _, c := range s {
		want = byte((uint16(want)>>1)|(uint16(want&1)<<7)) + c
	}
	if got := s.checksum(); got != want {
		t.Errorf("checksum = %#x, want %#x", got, want)
	}
}

func TestLongEntries(t *testing.T) {
	tests := []struct {
		name    string
		entries int
	}{
		{"a", 1},
		{strings.Repeat("b", 13), 1}, // fills one entry exactly: no terminator
		{strings.Repeat("c", 14), 2},
		{strings.Repeat("d", 26), 2},
		{strings.Repeat("e", 255), 20},
	}
	for _, tt := range tests {
		es := longEntries(tt.name, 0x42)
		if len(es) != tt.entries {
			t.Fatalf("%d-char name: %d entries, want %d", len(tt.name), len(es), tt.entries)
		}
		if es[0][0] != byte(tt.entries)|lastLongEntry {
			t.Errorf("%d-char name: first stored entry ordinal %#x, want %#x", len(tt.name), es[0][0], byte(tt.entries)|lastLongEntry)
		}
		for i, e := range es {
			if e[11] != attrLongName || e[13] != 0x42 || e[26] != 0 || e[27] != 0 {
				t.Errorf("entry %d: attr %#x checksum %#x cluster %x%x", i, e[11], e[13], e[26], e[27])
			}
		}
	}
}
