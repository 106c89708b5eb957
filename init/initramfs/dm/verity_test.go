package dm

import (
	"strings"
	"testing"
)

const testRoot = "9caa2c2cd6578dfeb82dcdf34685f68a55660a9025ae0e0fdeff1629591b5f1a"

func ballast() Verity {
	return Verity{
		DataDev: "254:2", HashDev: "254:3",
		DataBlockSize: 4096, HashBlockSize: 4096, DataBlocks: 2048, HashStartBlock: 1,
		Algorithm: "sha256", RootHash: testRoot, Salt: "db09",
		RestartOnCorrupt: true,
	}
}

func TestVerityParams(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(v *Verity)
		want    string
		wantErr string
	}{
		{
			name: "contract table",
			edit: func(v *Verity) {},
			want: "1 254:2 254:3 4096 4096 2048 1 sha256 " + testRoot + " db09 1 restart_on_corruption",
		},
		{
			name: "paths, no salt, no options, upper-case hex",
			edit: func(v *Verity) {
				v.DataDev, v.HashDev = "/dev/vda2", "/dev/vda3"
				v.Salt, v.RestartOnCorrupt = "", false
				v.RootHash = strings.ToUpper(testRoot)
			},
			want: "1 /dev/vda2 /dev/vda3 4096 4096 2048 1 sha256 " + testRoot + " -",
		},
		{
			name: "restart first, an option with an argument counts as two words",
			edit: func(v *Verity) { v.Options = []string{"ignore_zero_blocks", "fec_roots", "2"} },
			want: "1 254:2 254:3 4096 4096 2048 1 sha256 " + testRoot + " db09 4 restart_on_corruption ignore_zero_blocks fec_roots 2",
		},
		{name: "no data device", edit: func(v *Verity) { v.DataDev = "" }, wantErr: "invalid data device"},
		{name: "space in hash device", edit: func(v *Verity) { v.HashDev = "254:3 x" }, wantErr: "invalid hash device"},
		{name: "block size not power of two", edit: func(v *Verity) { v.DataBlockSize = 3000 }, wantErr: "data block size 3000"},
		{name: "hash block size too small", edit: func(v *Verity) { v.HashBlockSize = 256 }, wantErr: "hash block size 256"},
		{name: "no blocks", edit: func(v *Verity) { v.DataBlocks = 0 }, wantErr: "no data blocks"},
		{name: "overflow", edit: func(v *Verity) { v.DataBlocks = 1 << 62 }, wantErr: "overflow"},
		{name: "root hash not hex", edit: func(v *Verity) { v.RootHash = "xyz" }, wantErr: "not hex"},
		{name: "root hash too short for sha256", edit: func(v *Verity) { v.RootHash = "abcd" }, wantErr: "root hash has 2 bytes, sha256 digests have 32"},
		{name: "unknown algorithm skips length check", edit: func(v *Verity) { v.Algorithm, v.RootHash = "blake2b-256", "abcd" }, want: "1 254:2 254:3 4096 4096 2048 1 blake2b-256 abcd db09 1 restart_on_corruption"},
		{name: "salt not hex", edit: func(v *Verity) { v.Salt = "salty" }, wantErr: "salt"},
		{name: "option with space", edit: func(v *Verity) { v.Options = []string{"fec_roots 2"} }, wantErr: "one word per element"},
	}
	for _, tc := range tests {
		v := ballast()
		tc.edit(&v)
		err := v.Validate()
		got := VerityParams(v)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s:\n got %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
}

func TestVerityTarget(t *testing.T) {
	tg, err := ballast().Target()
	if err != nil {
		t.Fatal(err)
	}
	if tg.Start != 0 || tg.Length != 2048*8 || tg.Type != "verity" || !strings.HasPrefix(tg.Params, "1 254:2 254:3 ") {
		t.Errorf("Target() = %+v", tg)
	}
}
