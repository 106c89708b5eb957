package gocomponents

import (
	"strings"
	"testing"
)

func TestCrossTriplet(t *testing.T) {
	tests := []struct {
		goarch, host string
		want         string // triplet, or the error text
		cc           string
	}{
		{"amd64", "amd64", "", "gcc"},
		{"arm64", "arm64", "", "gcc"},
		{"arm64", "amd64", "aarch64-linux-gnu", "aarch64-linux-gnu-gcc"},
		{"amd64", "arm64", "x86_64-linux-gnu", "x86_64-linux-gnu-gcc"},
		{"riscv64", "amd64", "GOARCH riscv64 is not one of Ballast's architectures", ""},
	}
	for _, tt := range tests {
		got, err := crossTriplet(tt.goarch, tt.host)
		if tt.cc == "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("crossTriplet(%s, %s) = %q, %v; want error %q", tt.goarch, tt.host, got, err, tt.want)
			}
			continue
		}
		if err != nil || got != tt.want || cCompilerFor(got) != tt.cc {
			t.Errorf("crossTriplet(%s, %s) = %q (%s), %v; want %q (%s)", tt.goarch, tt.host, got, cCompilerFor(got), err, tt.want, tt.cc)
		}
	}
}
