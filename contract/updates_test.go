package contract

import "testing"

func TestEntryNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Entry
	}{
		{"ballast-1-a-0.1.0.efi", Entry{Generation: 1, Slot: SlotA, Version: "0.1.0"}},
		{"ballast-12-b-2.0.0-rc1+3.efi", Entry{Generation: 12, Slot: SlotB, Version: "2.0.0-rc1", Counting: true, TriesLeft: 3}},
		{"BALLAST-2-B-2.0.0+2-1.EFI", Entry{Generation: 2, Slot: SlotB, Version: "2.0.0", Counting: true, TriesLeft: 2, TriesDone: 1}},
		{"ballast-2-b-2.0.0+0-3.efi", Entry{Generation: 2, Slot: SlotB, Version: "2.0.0", Counting: true, TriesDone: 3}},
	} {
		got, err := ParseEntry(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ParseEntry(%q) = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"ballast-1-c-1.0.efi", "ballast-a-1.0.efi", "ballast-1-a-.efi", "ballast-1-a-1.0+x.efi", "linux.efi", "ballast-1-a-1.0.conf"} {
		if e, err := ParseEntry(bad); err == nil {
			t.Errorf("ParseEntry(%q) = %+v, want an error", bad, e)
		}
	}
	e := Entry{Generation: 3, Slot: SlotA, Version: "3.0.0", Counting: true, TriesLeft: 2, TriesDone: 1}
	if n := e.FileName(); n != "ballast-3-a-3.0.0+2-1.efi" {
		t.Errorf("FileName = %s", n)
	}
	if n := e.GiveUp().FileName(); n != "ballast-3-a-3.0.0+0-3.efi" || !e.GiveUp().Exhausted() {
		t.Errorf("GiveUp = %s", n)
	}
	if n := e.Blessed().FileName(); n != "ballast-3-a-3.0.0.efi" {
		t.Errorf("Blessed = %s", n)
	}
	for _, v := range []string{"1.0.0+build", "", "-1", "a b"} {
		if ValidateVersion(v) == nil {
			t.Errorf("ValidateVersion(%q) passed", v)
		}
	}
}
