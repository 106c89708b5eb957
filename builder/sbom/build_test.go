package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleInput is shaped like the qemu variant: the lock file's packages and Ballast's programs.
func sampleInput(bins testBinaries) Input {
	in := Input{
		Image: Image{Variant: "qemu", Version: "0.1.0", FileName: "disk.raw",
			SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		Created:      time.Unix(1767225600, 0), // 2026-01-01T00:00:00Z
		DebianMirror: "http://deb.debian.org/debian/",
		Debian: []DebianPackage{
			{Name: "linux-image-6.1.0-50-cloud-amd64", Version: "6.1.176-1",
				Filename: "pool/main/l/linux-signed-amd64/linux-image-6.1.0-50-cloud-amd64_6.1.176-1_amd64.deb",
				SHA256:   "efe19f605b6f54a8352e68d85a629abb2d30b72a085faef603a9152590baa791",
				Source:   "linux-signed-amd64", License: "GPL-2.0-only"},
			{Name: "systemd-boot-efi", Version: "252.39-1~deb12u2",
				Filename: "pool/main/s/systemd/systemd-boot-efi_252.39-1~deb12u2_amd64.deb",
				SHA256:   "8f2b81bdcfafc466882a0cae460272dbf10d8d97c6a3c1c6ea33038c155a2f5e",
				Source:   "systemd", License: "LGPL-2.1-or-later"},
			{Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1",
				Filename: "pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb",
				SHA256:   "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744",
				Source:   "busybox"},
			{Name: "tzdata", Version: "2025b-0+deb12u1",
				Filename: "pool/main/t/tzdata/tzdata_2025b-0+deb12u1_all.deb",
				SHA256:   "1111111111111111111111111111111111111111111111111111111111111111",
				License:  "LicenseRef-public-domain AND LicenseRef-other"},
		},
		Kernel: Kernel{Package: "linux-image-6.1.0-50-cloud-amd64", Release: "6.1.0-50-cloud-amd64"},
	}
	if bins.ballast != "" {
		in.Go = []GoBinary{
			{Path: "/usr/bin/ballast", HostPath: bins.ballast, DevelVersion: "0.1.0"},
			{Path: "/usr/bin/hello", HostPath: bins.hello},
			{Path: "/usr/bin/replaced", HostPath: bins.replaced},
		}
	}
	return in
}

// TestGoBinaries builds the test binaries once (linking Ballast's CLI takes seconds) and runs every
// test that reads them.
func TestGoBinaries(t *testing.T) {
	bins := buildTestBinaries(t)
	t.Run("ReadGoBinary", func(t *testing.T) { testReadGoBinary(t, bins) })
	t.Run("Document", func(t *testing.T) { testDocument(t, bins) })
	t.Run("Deterministic", func(t *testing.T) { testDeterministic(t, bins) })
}

func testDocument(t *testing.T, bins testBinaries) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleInput(bins)); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	checkStructure(t, raw)

	var doc Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	pkgs := map[string]Package{}
	for _, p := range doc.Packages {
		pkgs[p.SPDXID] = p
	}
	rels := map[Relationship]bool{}
	for _, r := range doc.Relationships {
		rels[r] = true
	}
	purl := func(p Package) string {
		for _, r := range p.ExternalRefs {
			if r.Type == "purl" {
				return r.Locator
			}
		}
		return ""
	}
	goVersion := strings.Fields(runtime.Version())[0]

	// Header.
	if doc.Name != "ballast-qemu-0.1.0" || doc.CreationInfo.Created != "2026-01-01T00:00:00Z" ||
		!slices.Equal(doc.CreationInfo.Creators, []string{"Tool: ballast-0.1.0"}) ||
		doc.DocumentNamespace != "https://ballast.dev/spdx/qemu-0.1.0-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("header: name %q created %q creators %q namespace %q", doc.Name, doc.CreationInfo.Created, doc.CreationInfo.Creators, doc.DocumentNamespace)
	}
	image := pkgs["SPDXRef-Image-qemu"]
	if !slices.Equal(doc.DocumentDescribes, []string{"SPDXRef-Image-qemu"}) ||
		!rels[Relationship{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image-qemu"}] ||
		image.Checksums[0].Value != sampleInput(bins).Image.SHA256 || image.PackageFileName != "disk.raw" {
		t.Errorf("image package %+v, describes %v", image, doc.DocumentDescribes)
	}

	// Debian packages and the kernel.
	bb := pkgs["SPDXRef-Deb-busybox-static"]
	if bb.VersionInfo != "1:1.35.0-4+deb12u1+b1" || bb.LicenseDeclared != "NOASSERTION" || bb.SourceInfo != "built package from: busybox" ||
		purl(bb) != "pkg:deb/debian/busybox-static@1:1.35.0-4%2Bdeb12u1%2Bb1?arch=amd64" ||
		bb.DownloadLocation != "http://deb.debian.org/debian/pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb" ||
		bb.Checksums[0] != (Checksum{"SHA256", "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744"}) {
		t.Errorf("busybox-static: %+v", bb)
	}
	if tz := pkgs["SPDXRef-Deb-tzdata"]; purl(tz) != "pkg:deb/debian/tzdata@2025b-0%2Bdeb12u1?arch=all" {
		t.Errorf("tzdata purl %q", purl(tz))
	}
	kernel := pkgs["SPDXRef-Kernel-6.1.0-50-cloud-amd64"]
	if kernel.VersionInfo != "6.1.0-50-cloud-amd64" || kernel.LicenseDeclared != "GPL-2.0-only" ||
		!rels[Relationship{"SPDXRef-Image-qemu", "CONTAINS", kernel.SPDXID}] ||
		!rels[Relationship{"SPDXRef-Deb-linux-image-6.1.0-50-cloud-amd64", "CONTAINS", kernel.SPDXID}] {
		t.Errorf("kernel %+v or its relationships missing", kernel)
	}
	for _, d := range sampleInput(bins).Debian {
		if !rels[Relationship{"SPDXRef-Image-qemu", "CONTAINS", "SPDXRef-Deb-" + idPart(d.Name)}] {
			t.Errorf("image does not contain %s", d.Name)
		}
	}
	var refs []string
	for _, l := range doc.ExtractedLicenses {
		refs = append(refs, l.LicenseID)
	}
	if !slices.Equal(refs, []string{"LicenseRef-other", "LicenseRef-public-domain"}) {
		t.Errorf("extracted licences %v", refs)
	}

	// Go binaries and modules.
	const ballastID = "SPDXRef-GoBinary-usr-bin-ballast"
	ballast := pkgs[ballastID]
	if ballast.Name != "/usr/bin/ballast" || ballast.VersionInfo != "0.1.0" || !isSHA256(ballast.Checksums[0].Value) ||
		purl(ballast) != "pkg:golang/github.com/ballast-os/ballast@0.1.0#builder/cmd/ballast" ||
		!strings.Contains(ballast.Comment, goVersion) || !rels[Relationship{"SPDXRef-Image-qemu", "CONTAINS", ballastID}] {
		t.Errorf("ballast binary: %+v", ballast)
	}
	const tomlID = "SPDXRef-GoModule-github.com-BurntSushi-toml-v1.6.0"
	toml := pkgs[tomlID]
	var sumRef string
	for _, r := range toml.ExternalRefs {
		if r.Category == "OTHER" && r.Type == "go-module-sum" {
			sumRef = r.Locator
		}
	}
	if toml.Name != "github.com/BurntSushi/toml" || toml.VersionInfo != "v1.6.0" ||
		purl(toml) != "pkg:golang/github.com/BurntSushi/toml@v1.6.0" || sumRef != goSumH1(t, "github.com/BurntSushi/toml v1.6.0") ||
		toml.Comment != "replaces github.com/BurntSushi/toml@v1.5.0" {
		t.Errorf("toml module: %+v", toml)
	}
	for _, bin := range []string{ballastID, "SPDXRef-GoBinary-usr-bin-replaced"} {
		if !rels[Relationship{bin, "STATIC_LINK", tomlID}] {
			t.Errorf("%s does not STATIC_LINK %s", bin, tomlID)
		}
	}
	stdlibID := "SPDXRef-GoModule-stdlib-" + goVersion
	if p := pkgs[stdlibID]; purl(p) != "pkg:golang/stdlib@"+strings.TrimPrefix(goVersion, "go") ||
		!rels[Relationship{"SPDXRef-GoBinary-usr-bin-hello", "STATIC_LINK", stdlibID}] {
		t.Errorf("stdlib: %+v", p)
	}
	hello := pkgs["SPDXRef-GoBinary-usr-bin-hello"]
	if hello.VersionInfo != "" || purl(hello) != "pkg:golang/example.com/hello#cmd/hello" {
		t.Errorf("hello: %+v", hello)
	}
	helloMain := pkgs["SPDXRef-GoModule-example.com-hello"]
	if helloMain.VersionInfo != "" || !strings.Contains(helloMain.Comment, "(devel)") {
		t.Errorf("hello's main module: %+v", helloMain)
	}
	greet := pkgs["SPDXRef-GoModule-example.com-greet"]
	if greet.VersionInfo != "" || purl(greet) != "pkg:golang/example.com/greet" ||
		greet.Comment != "replaces example.com/greet@v0.0.0; replaced by the local directory ./greet" {
		t.Errorf("greet: %+v", greet)
	}
	// Every module the ballast binary embeds must be in the document, linked from it.
	info, err := readGoBinary(GoBinary{Path: "/usr/bin/ballast", HostPath: bins.ballast, DevelVersion: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range info.Deps {
		id := "SPDXRef-GoModule-" + idPart(modVersion(m.Path, m.Version))
		if p, ok := pkgs[id]; !ok || p.VersionInfo != m.Version || !rels[Relationship{ballastID, "STATIC_LINK", id}] {
			t.Errorf("module %s@%s: package %+v, linked %v", m.Path, m.Version, p, rels[Relationship{ballastID, "STATIC_LINK", id}])
		}
	}
}

// checkStructure validates the JSON as a consumer would, without this package's types: required SPDX
// 2.3 fields, identifier syntax and uniqueness, references that resolve, and a stable order.
func checkStructure(t *testing.T, raw []byte) {
	t.Helper()
	spdxIDPattern := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	createdPattern := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	list := func(m map[string]any, k string) []any { l, _ := m[k].([]any); return l }

	for k, want := range map[string]string{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT"} {
		if str(doc, k) != want {
			t.Errorf("%s = %q, want %q", k, str(doc, k), want)
		}
	}
	if str(doc, "name") == "" || !strings.HasPrefix(str(doc, "documentNamespace"), "https://") || strings.Contains(str(doc, "documentNamespace"), "#") {
		t.Errorf("name %q / documentNamespace %q", str(doc, "name"), str(doc, "documentNamespace"))
	}
	ci, _ := doc["creationInfo"].(map[string]any)
	if ci == nil || !createdPattern.MatchString(str(ci, "created")) || len(list(ci, "creators")) == 0 {
		t.Errorf("creationInfo %v", ci)
	}

	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	var order []string
	purposes := []string{"APPLICATION", "FRAMEWORK", "LIBRARY", "CONTAINER", "OPERATING_SYSTEM", "DEVICE", "FIRMWARE", "SOURCE", "ARCHIVE", "FILE", "INSTALL", "OTHER"}
	refPattern := regexp.MustCompile(`LicenseRef-[A-Za-z0-9.-]+`)
	declared := map[string]bool{}
	for _, l := range list(doc, "hasExtractedLicensingInfos") {
		m, _ := l.(map[string]any)
		if str(m, "extractedText") == "" {
			t.Errorf("extracted licence %v has no text", m)
		}
		declared[str(m, "licenseId")] = true
	}
	for _, p := range list(doc, "packages") {
		m, _ := p.(map[string]any)
		id := str(m, "SPDXID")
		if !spdxIDPattern.MatchString(id) || ids[id] {
			t.Errorf("package SPDXID %q invalid or repeated", id)
		}
		ids[id] = true
		order = append(order, id)
		if str(m, "name") == "" || str(m, "downloadLocation") == "" {
			t.Errorf("package %s lacks name or downloadLocation", id)
		}
		if fa, ok := m["filesAnalyzed"].(bool); !ok || fa {
			t.Errorf("package %s: filesAnalyzed must be false (no file list, so no verification code)", id)
		}
		if pp := str(m, "primaryPackagePurpose"); pp != "" && !slices.Contains(purposes, pp) {
			t.Errorf("package %s: purpose %q", id, pp)
		}
		for _, ref := range refPattern.FindAllString(str(m, "licenseDeclared")+" "+str(m, "licenseConcluded"), -1) {
			if !declared[ref] {
				t.Errorf("package %s uses undeclared %s", id, ref)
			}
		}
		for _, c := range list(m, "checksums") {
			cm, _ := c.(map[string]any)
			if str(cm, "algorithm") != "SHA256" || len(str(cm, "checksumValue")) != 64 {
				t.Errorf("package %s checksum %v", id, cm)
			}
		}
		for _, r := range list(m, "externalRefs") {
			rm, _ := r.(map[string]any)
			cat := str(rm, "referenceCategory")
			if cat != "PACKAGE-MANAGER" && cat != "OTHER" || strings.ContainsAny(str(rm, "referenceLocator"), " \t") {
				t.Errorf("package %s externalRef %v", id, rm)
			}
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("packages not sorted by SPDXID")
	}
	var rels []string
	for _, r := range list(doc, "relationships") {
		m, _ := r.(map[string]any)
		a, typ, b := str(m, "spdxElementId"), str(m, "relationshipType"), str(m, "relatedSpdxElement")
		if !ids[a] || !ids[b] {
			t.Errorf("relationship %s %s %s names an unknown element", a, typ, b)
		}
		if !slices.Contains([]string{"DESCRIBES", "CONTAINS", "STATIC_LINK"}, typ) {
			t.Errorf("relationship type %q", typ)
		}
		rels = append(rels, a+"\x00"+typ+"\x00"+b)
	}
	if !slices.IsSorted(rels) || len(slices.Compact(slices.Clone(rels))) != len(rels) {
		t.Errorf("relationships not sorted or repeated")
	}
	for _, d := range list(doc, "documentDescribes") {
		if s, _ := d.(string); !ids[s] || s == "SPDXRef-DOCUMENT" {
			t.Errorf("documentDescribes %v", d)
		}
	}
}

func testDeterministic(t *testing.T, bins testBinaries) {
	write := func(in Input) []byte {
		var buf bytes.Buffer
		if err := Write(&buf, in); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := write(sampleInput(bins))
	if second := write(sampleInput(bins)); !bytes.Equal(first, second) {
		t.Error("two runs differ")
	}
	// Input order must not matter either: the builder may list packages in any order.
	in := sampleInput(bins)
	slices.Reverse(in.Debian)
	slices.Reverse(in.Go)
	if !bytes.Equal(first, write(in)) {
		t.Error("reordering the input changes the output")
	}
	if !bytes.HasSuffix(first, []byte("}\n")) || !bytes.Contains(first, []byte("\n  \"packages\": [\n")) {
		t.Error("output is not indented JSON ending in a newline")
	}
}

func TestIDCollisions(t *testing.T) {
	in := sampleInput(testBinaries{})
	// Debian allows '+' in names; sanitized, "foo+bar" and "foo-bar" read the same.
	for _, n := range []string{"foo+bar", "foo-bar"} {
		in.Debian = append(in.Debian, DebianPackage{Name: n, Version: "1", Filename: "pool/main/f/" + n + "_1_amd64.deb",
			SHA256: strings.Repeat("2", 64)})
	}
	doc, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range doc.Packages {
		if strings.HasPrefix(p.Name, "foo") {
			ids = append(ids, p.SPDXID)
		}
	}
	if len(ids) != 2 || ids[0] == ids[1] || !strings.HasPrefix(ids[0], "SPDXRef-Deb-foo-bar-") || !validSPDXID(ids[1]) {
		t.Errorf("colliding names got IDs %v", ids)
	}
	// The other packages keep their plain IDs.
	if !slices.ContainsFunc(doc.Packages, func(p Package) bool { return p.SPDXID == "SPDXRef-Deb-busybox-static" }) {
		t.Error("busybox-static lost its plain ID")
	}
}

func TestBuildErrors(t *testing.T) {
	// The test binary is itself a Go binary with build information.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"no creation time", func(in *Input) { in.Created = time.Time{} }, "creation time not set"},
		{"bad image sha", func(in *Input) { in.Image.SHA256 = "ABC" }, "image disk.raw: sha256"},
		{"no variant", func(in *Input) { in.Image.Variant = "" }, "image needs variant"},
		{"duplicate deb", func(in *Input) { in.Debian = append(in.Debian, in.Debian[2]) }, "debian package busybox-static: listed twice"},
		{"deb without version", func(in *Input) { in.Debian[2].Version = "" }, "busybox-static has no version"},
		{"bad deb sha", func(in *Input) { in.Debian[2].SHA256 = "" }, "busybox-static: sha256"},
		{"bad deb file name", func(in *Input) { in.Debian[2].Filename = "busybox.deb" }, "busybox-static: file name"},
		{"bad licence", func(in *Input) { in.Debian[2].License = "GPL-2+ with exception" }, "busybox-static: license"},
		{"kernel package missing", func(in *Input) { in.Kernel.Package = "linux-image-other" }, `"linux-image-other" is not among the Debian packages`},
		{"no kernel release", func(in *Input) { in.Kernel.Release = "" }, "release is empty"},
		{"duplicate binary", func(in *Input) {
			in.Go = []GoBinary{{Path: "/usr/bin/self", HostPath: self}, {Path: "/usr/bin/self", HostPath: self}}
		}, "go binary /usr/bin/self: listed twice"},
		{"missing binary", func(in *Input) { in.Go = []GoBinary{{Path: "/usr/bin/x", HostPath: "/nonexistent/x"}} }, "go binary /usr/bin/x (/nonexistent/x)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := sampleInput(testBinaries{})
			c.change(&in)
			_, err := Build(in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Build: %v, want an error containing %q", err, c.want)
			}
		})
	}
}
