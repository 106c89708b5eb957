package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRunPrint(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
		want     []string // substrings of the printed command line
	}{
		{
			name: "defaults",
			args: []string{"--print", "--disk", "build/run.raw"},
			want: []string{"-m 1024 ", "file=build/run.raw ", "-serial mon:stdio", "user,id=net0,restrict=on "},
		},
		{
			name: "flags",
			args: []string{"--print", "--disk", "d.raw", "--extra-disk", "cidata.iso", "--hostfwd", "tcp:127.0.0.1:50443-:50443",
				"--hostfwd", "tcp:127.0.0.1:2222-:22", "--mem", "2048", "--no-reboot"},
			want: []string{"-m 2048 ", "readonly=on,file=cidata.iso ", "hostfwd=tcp:127.0.0.1:50443-:50443,hostfwd=tcp:127.0.0.1:2222-:22 ", "-no-reboot"},
		},
		{
			name: "defaults are amd64",
			args: []string{"--print", "--disk", "d.raw"},
			want: []string{"qemu-system-x86_64 ", "-machine q35 ", "file=/usr/share/OVMF/OVMF_VARS_4M.fd"},
		},
		{
			name: "arm64",
			args: []string{"--print", "--arch", "arm64", "--disk", "d.raw"},
			want: []string{"qemu-system-aarch64 ", "-machine virt,gic-version=3 ", "file=/usr/share/AAVMF/AAVMF_CODE.fd ",
				"file=/usr/share/AAVMF/AAVMF_VARS.fd ", "-serial mon:stdio"},
		},
		{name: "unknown arch", args: []string{"--arch", "riscv64", "--disk", "d.raw"}, wantCode: 2, wantErr: `--arch: architecture "riscv64"`},
		{name: "secure boot on arm64", args: []string{"--arch", "arm64", "--secure-boot", "--disk", "d.raw"}, wantCode: 2,
			wantErr: "SecureBoot: not supported on arm64"},
		{name: "no disk", args: []string{"--print"}, wantCode: 2},
		{name: "stray argument", args: []string{"--disk", "d", "extra"}, wantCode: 2},
		{name: "bad flag", args: []string{"--nope"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code, err := run(tt.args, &out, io.Discard)
			if code != tt.wantCode || (err != nil) != (tt.wantCode != 0) {
				t.Fatalf("run() = %d, %v; want code %d", code, err, tt.wantCode)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run() error %v, want it to say %q", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("printed %q\nwant it to contain %q", out.String(), w)
				}
			}
			if strings.Contains(out.String(), "-no-reboot") && !strings.Contains(strings.Join(tt.args, " "), "--no-reboot") {
				t.Errorf("interactive runs must allow reboots: %s", out.String())
			}
		})
	}
}
