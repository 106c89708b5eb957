package gocomponents

import (
	"fmt"

	"github.com/ballast-os/ballast/contract"
)

// archOf returns the Ballast architecture whose Go name is goarch.
func archOf(goarch string) (contract.Arch, error) {
	for _, a := range contract.Archs() {
		if a.Info().GOARCH == goarch {
			return a, nil
		}
	}
	return "", fmt.Errorf("GOARCH %s is not one of Ballast's architectures %v", goarch, contract.Archs())
}

// crossTriplet is the GNU triplet of the C cross toolchain a cgo build for goarch needs on a host
// of hostGOARCH, "" when the host's own gcc builds for it. Debian names its cross compilers
// (gcc-aarch64-linux-gnu) and multiarch library directories (/usr/lib/aarch64-linux-gnu) by it.
func crossTriplet(goarch, hostGOARCH string) (string, error) {
	a, err := archOf(goarch)
	if err != nil {
		return "", err
	}
	if goarch == hostGOARCH {
		return "", nil
	}
	return a.Info().Machine + "-linux-gnu", nil
}

// cCompilerFor is the C compiler of a build for triplet: fixed rather than taken from $CC so that
// a developer's compiler choice cannot change the bytes of a component; its version is part of
// the cache key.
func cCompilerFor(triplet string) string {
	if triplet == "" {
		return "gcc"
	}
	return triplet + "-gcc"
}

// pkgConfigEnv points pkg-config at the target's multiarch .pc files (libseccomp-dev:arm64 puts
// them in /usr/lib/aarch64-linux-gnu/pkgconfig) and at nothing of the host's, as Debian's
// <triplet>-pkg-config wrapper would; a native build keeps the environment's own.
func pkgConfigEnv(triplet string) []string {
	if triplet == "" {
		return nil
	}
	return []string{"PKG_CONFIG_LIBDIR=/usr/lib/" + triplet + "/pkgconfig:/usr/share/pkgconfig", "PKG_CONFIG_PATH="}
}
