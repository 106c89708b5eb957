// Package sbom writes an image's software bill of materials as an SPDX 2.3 JSON document: the Debian
// packages, the kernel, and every Go module linked into every Go binary in the image.
package sbom

// The types below follow the SPDX 2.3 JSON schema. Only the fields Ballast fills are declared; optional
// ones carry omitempty so that an unknown value is left out rather than written as an empty string.

// Document is an SPDX 2.3 document.
type Document struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      CreationInfo       `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []Package          `json:"packages"`
	Relationships     []Relationship     `json:"relationships"`
	ExtractedLicenses []ExtractedLicense `json:"hasExtractedLicensingInfos,omitempty"`
}

// CreationInfo says when and by what the document was made.
type CreationInfo struct {
	Created  string   `json:"created"` // YYYY-MM-DDThh:mm:ssZ
	Creators []string `json:"creators"`
}

// Package is one SPDX package: the image, a .deb, the kernel, a Go binary or a Go module.
type Package struct {
	SPDXID           string        `json:"SPDXID"`
	Name             string        `json:"name"`
	VersionInfo      string        `json:"versionInfo,omitempty"`
	PackageFileName  string        `json:"packageFileName,omitempty"`
	Supplier         string        `json:"supplier,omitempty"`
	DownloadLocation string        `json:"downloadLocation"`
	FilesAnalyzed    bool          `json:"filesAnalyzed"`
	Checksums        []Checksum    `json:"checksums,omitempty"`
	SourceInfo       string        `json:"sourceInfo,omitempty"`
	LicenseConcluded string        `json:"licenseConcluded"`
	LicenseDeclared  string        `json:"licenseDeclared"`
	CopyrightText    string        `json:"copyrightText"`
	Comment          string        `json:"comment,omitempty"`
	ExternalRefs     []ExternalRef `json:"externalRefs,omitempty"`
	Purpose          string        `json:"primaryPackagePurpose,omitempty"`
}

// Checksum is a package checksum; Algorithm is an SPDX algorithm name such as "SHA256".
type Checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

// ExternalRef points outside the document, e.g. a purl.
type ExternalRef struct {
	Category string `json:"referenceCategory"` // PACKAGE-MANAGER, SECURITY, PERSISTENT-ID, OTHER
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
	Comment  string `json:"comment,omitempty"`
}

// Relationship says Element <Type> Related, e.g. an image CONTAINS a package.
type Relationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// ExtractedLicense declares a LicenseRef- identifier used in a license expression; SPDX requires one
// for every such reference.
type ExtractedLicense struct {
	LicenseID     string `json:"licenseId"`
	Name          string `json:"name,omitempty"`
	ExtractedText string `json:"extractedText"`
}

// SPDX vocabulary used by this package.
const (
	spdxVersion = "SPDX-2.3"
	dataLicense = "CC0-1.0"
	documentID  = "SPDXRef-DOCUMENT"
	noAssertion = "NOASSERTION"

	relDescribes  = "DESCRIBES"
	relContains   = "CONTAINS"
	relStaticLink = "STATIC_LINK"

	// The JSON schema spells this purpose with an underscore, unlike the tag-value format.
	purposeOS      = "OPERATING_SYSTEM"
	purposeApp     = "APPLICATION"
	purposeLibrary = "LIBRARY"
	purposeInstall = "INSTALL"

	categoryPackageManager = "PACKAGE-MANAGER"
	categoryOther          = "OTHER"
)
