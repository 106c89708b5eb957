package sbom

import "time"

// Input is everything the SBOM records about one image. The builder fills it after the disk is
// written; Build reads the Go binaries named here but nothing else from disk.
type Input struct {
	Image   Image
	Created time.Time // the build's time (SOURCE_DATE_EPOCH), never the clock, so rebuilds match
	// DebianMirror, when set, makes each .deb's download location <mirror>/<filename>; otherwise the
	// location is NOASSERTION.
	DebianMirror string
	Debian       []DebianPackage
	Kernel       Kernel
	Go           []GoBinary
}

// Image is the artefact the document describes.
type Image struct {
	Variant  string // e.g. "qemu"
	Version  string // Ballast's version; also names the tool in creationInfo
	FileName string // e.g. "disk.raw"
	SHA256   string // lower-case hex of the file
}

// DebianPackage is one .deb whose contents are in the image.
type DebianPackage struct {
	Name     string
	Version  string
	SHA256   string // of the .deb file
	Filename string // pool path below the mirror root, e.g. pool/main/b/busybox/busybox-static_..._amd64.deb
	Source   string // source package name, "" if it equals Name or is unknown
	License  string // SPDX license expression (see DebianLicense), "" if unknown
	// Mirror is the archive root this package came from; it overrides Input.DebianMirror, since one
	// image mixes packages from the main and the security archives.
	Mirror string
}

// Kernel is the Linux kernel in the image's UKI.
type Kernel struct {
	Package string // the Debian package it came from; must be one of Input.Debian
	Release string // uname -r, e.g. 6.1.0-50-cloud-amd64
}

// GoBinary is one Go executable in the image.
type GoBinary struct {
	Path     string // where it is installed in the image, e.g. /usr/bin/apiserver
	HostPath string // the very file that went into the image, read with debug/buildinfo
	// DevelVersion is recorded as the main module's version when the binary reports "(devel)", as
	// binaries built from a working tree do; e.g. Ballast's version for Ballast's own programs.
	DevelVersion string
}
