package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
)

const imageKey = "image"

// Build assembles the SPDX document for in, reading each Go binary's build information. The result
// depends only on in and the binaries' contents, so rebuilding an image gives the same bytes.
func Build(in Input) (*Document, error) {
	im := in.Image
	switch {
	case im.Variant == "" || im.Version == "" || im.FileName == "":
		return nil, fmt.Errorf("sbom: image needs variant, version and file name, got %q, %q, %q", im.Variant, im.Version, im.FileName)
	case !isSHA256(im.SHA256):
		return nil, fmt.Errorf("sbom: image %s: sha256 %q is not 64 lower-case hex digits", im.FileName, im.SHA256)
	case in.Created.IsZero():
		// A zero time would silently date the SBOM to year 1; the caller must pass the build's time.
		return nil, fmt.Errorf("sbom: image %s: creation time not set (pass the build's SOURCE_DATE_EPOCH)", im.FileName)
	}

	g := newGraph()
	if err := g.add(imageKey, "Image", im.Variant, imagePackage(im)); err != nil {
		return nil, err
	}
	g.relate(documentID, relDescribes, imageKey)
	if err := addDebian(g, imageKey, in.DebianMirror, in.Debian); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	if err := addKernel(g, imageKey, in.Kernel, in.Debian); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	bins := make([]goBinary, 0, len(in.Go))
	for _, b := range in.Go {
		gb, err := readGoBinary(b)
		if err != nil {
			return nil, fmt.Errorf("sbom: %w", err)
		}
		bins = append(bins, gb)
	}
	if err := addGoBinaries(g, imageKey, bins); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}

	pkgs, rels, ids, err := g.finish()
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	doc := &Document{
		SPDXVersion:       spdxVersion,
		DataLicense:       dataLicense,
		SPDXID:            documentID,
		Name:              "ballast-" + im.Variant + "-" + im.Version,
		DocumentNamespace: "https://ballast.dev/spdx/" + url.PathEscape(im.Variant+"-"+im.Version+"-"+im.SHA256),
		CreationInfo: CreationInfo{
			Created:  in.Created.UTC().Format("2006-01-02T15:04:05Z"),
			Creators: []string{"Tool: ballast-" + im.Version},
		},
		DocumentDescribes: []string{ids[imageKey]},
		Packages:          pkgs,
		Relationships:     rels,
		ExtractedLicenses: extractedLicenses(in.Debian),
	}
	if err := doc.Check(); err != nil {
		return nil, fmt.Errorf("sbom: image %s: %w", im.FileName, err)
	}
	return doc, nil
}

func imagePackage(im Image) Package {
	return Package{
		Name:             "ballast-" + im.Variant,
		VersionInfo:      im.Version,
		PackageFileName:  im.FileName,
		DownloadLocation: noAssertion,
		Checksums:        []Checksum{{Algorithm: "SHA256", Value: im.SHA256}},
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
		Comment:          "Ballast " + im.Variant + " disk image",
		Purpose:          purposeOS,
	}
}

// Write builds the document for in and writes it as indented JSON with a final newline.
func Write(w io.Writer, in Input) error {
	doc, err := Build(in)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	// Licence expressions and comments are text, not HTML: keep "<" and "&" readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("sbom: encode %s: %w", in.Image.FileName, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("sbom: write %s: %w", in.Image.FileName, err)
	}
	return nil
}
