package dm

import (
	"bytes"
	"strings"
	"testing"
)

func local() Crypt {
	return Crypt{
		Cipher: "aes-xts-plain64", Key: bytes.Repeat([]byte{0xab}, 64), Dev: "254:3", Offset: 32768,
		SectorSize: 4096, NoReadWorkqueue: true, NoWriteWorkqueue: true,
	}
}

var hexKey = strings.Repeat("ab", 64)

func TestCryptParams(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(c *Crypt)
		length  uint64
		want    string
		wantErr string
	}{
		{name: "ballast /local", edit: func(*Crypt) {}, length: 8192,
			want: "aes-xts-plain64 " + hexKey + " 0 254:3 32768 3 no_read_workqueue no_write_workqueue sector_size:4096"},
		{name: "512-byte sectors, no options", edit: func(c *Crypt) { *c = Crypt{Cipher: "aes-xts-plain64", Key: []byte{1, 2}, Dev: "/dev/vdb", Offset: 7} }, length: 9,
			want: "aes-xts-plain64 0102 0 /dev/vdb 7"},
		{name: "all options in kernel order", edit: func(c *Crypt) { c.AllowDiscards, c.IVLargeSectors, c.IVOffset = true, true, 16 }, length: 8,
			want: "aes-xts-plain64 " + hexKey + " 16 254:3 32768 5 allow_discards no_read_workqueue no_write_workqueue sector_size:4096 iv_large_sectors"},
		{name: "keyring key", edit: func(c *Crypt) { c.Key, c.KeyringKey = nil, "64:logon:ballast:local" }, length: 8,
			want: "aes-xts-plain64 :64:logon:ballast:local 0 254:3 32768 3 no_read_workqueue no_write_workqueue sector_size:4096"},
		{name: "no key", edit: func(c *Crypt) { c.Key = nil }, length: 8, wantErr: "no key"},
		{name: "bad keyring type", edit: func(c *Crypt) { c.KeyringKey = "64:trusted:x" }, length: 8, wantErr: "keyring key"},
		{name: "bad keyring size", edit: func(c *Crypt) { c.KeyringKey = "x:logon:ballast:local" }, length: 8, wantErr: "no valid size"},
		{name: "no device", edit: func(c *Crypt) { c.Dev = "" }, length: 8, wantErr: "invalid device"},
		{name: "cipher with space", edit: func(c *Crypt) { c.Cipher = "aes xts" }, length: 8, wantErr: "invalid cipher"},
		{name: "sector size", edit: func(c *Crypt) { c.SectorSize = 8192 }, length: 16, wantErr: "sector size 8192"},
		{name: "offset not whole sectors", edit: func(c *Crypt) { c.Offset = 4 }, length: 8, wantErr: "offset 4"},
		{name: "iv offset with large sectors", edit: func(c *Crypt) { c.IVLargeSectors, c.IVOffset = true, 3 }, length: 8, wantErr: "iv offset 3"},
		{name: "length not whole sectors", edit: func(*Crypt) {}, length: 12, wantErr: "length 12"},
		{name: "zero length", edit: func(*Crypt) {}, length: 0, wantErr: "length 0"},
	}
	for _, tc := range tests {
		c := local()
		tc.edit(&c)
		tg, err := c.Target(tc.length)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), hexKey) {
				t.Errorf("%s: error shows the key", tc.name)
			}
			continue
		}
		if err != nil || tg.Params != tc.want || tg.Type != "crypt" || tg.Length != tc.length || tg.Start != 0 {
			t.Errorf("%s:\n got %+v, %v\nwant %q", tc.name, tg, err, tc.want)
		}
	}
}

// TestDescribeRedactsKey: a failed DM_TABLE_LOAD reports the table, which must not leak the key.
func TestDescribeRedactsKey(t *testing.T) {
	tg, err := local().Target(8)
	if err != nil {
		t.Fatal(err)
	}
	got := describe([]Target{tg, {Start: 8, Length: 8, Type: "zero"}})
	if strings.Contains(got, hexKey) || !strings.Contains(got, "crypt aes-xts-plain64 <key> 0 254:3 32768") {
		t.Errorf("describe = %q", got)
	}
	kr := local()
	kr.Key, kr.KeyringKey = nil, "64:logon:ballast:local"
	tg, _ = kr.Target(8)
	if got := describe([]Target{tg}); !strings.Contains(got, ":64:logon:ballast:local") {
		t.Errorf("keyring reference redacted needlessly: %q", got)
	}
}

// TestCryptReadWrite: a crypt table goes through marshalling with a writable (no
// DM_READONLY_FLAG) load, which Create does when readOnly is false.
func TestCryptReadWrite(t *testing.T) {
	tg, err := local().Target(8192)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := marshalTargets([]Target{tg})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(payload, []byte("crypt\x00")) || !bytes.Contains(payload, []byte(tg.Params+"\x00")) {
		t.Error("payload lacks the crypt target")
	}
	buf, err := marshalRequest(request{name: "local", targetCount: 1, payload: payload}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if flags := uint32(buf[28]) | uint32(buf[29])<<8; flags != 0 {
		t.Errorf("flags %#x on a read-write load", flags)
	}
}
