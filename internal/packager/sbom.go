package packager

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// SPDX 2.3 JSON, only the fields this SBOM fills.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	PackageFileName  string         `json:"packageFileName,omitempty"`
	Supplier         string         `json:"supplier,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	CopyrightText    string         `json:"copyrightText"`
	Comment          string         `json:"comment,omitempty"`
	Purpose          string         `json:"primaryPackagePurpose,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// makeSBOM writes an SPDX 2.3 document listing what the manifest lists: the
// upstream source, every applied patch, the built packages with their
// sha256 and the runtime libraries they depend on. It is deterministic:
// its time is SOURCE_DATE_EPOCH and its namespace derives from the build.
func makeSBOM(m Manifest, license, vendor string) ([]byte, error) {
	noassert := func(s string) string {
		if s == "" {
			return "NOASSERTION"
		}
		return s
	}
	name := manifestBase(m)
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: name,
		DocumentNamespace: "urn:criu-forge:spdx:" + url.PathEscape(name) + ":" + url.PathEscape(noassert(m.BuildKey)),
		CreationInfo: spdxCreation{
			Created:  time.Unix(m.SourceDateEpoch, 0).UTC().Format(time.RFC3339),
			Creators: []string{"Tool: criu-forge"},
		},
	}
	upstreamLoc := "NOASSERTION"
	if m.Upstream.URL != "" {
		upstreamLoc = "git+" + m.Upstream.URL
		if m.Upstream.Commit != "" {
			upstreamLoc += "@" + m.Upstream.Commit
		}
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: "SPDXRef-Upstream", Name: "criu", VersionInfo: m.Upstream.Version,
		DownloadLocation: upstreamLoc, LicenseConcluded: "NOASSERTION", LicenseDeclared: noassert(license),
		CopyrightText: "NOASSERTION", Comment: "upstream source, ref " + noassert(m.Upstream.Ref) + ", commit " + noassert(m.Upstream.Commit),
		Purpose: "SOURCE",
	})
	for i, p := range m.Patches {
		id := fmt.Sprintf("SPDXRef-Patch-%d", i+1)
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: id, Name: p.Name, DownloadLocation: noassert(p.URL),
			Checksums:        []spdxChecksum{{"SHA256", p.SHA256}},
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			Comment: strings.TrimSpace(p.Source + " commits " + strings.Join(p.Commits, " ") + "; checksum of the normalized patch"),
			Purpose: "SOURCE",
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{id, "PATCH_APPLIED", "SPDXRef-Upstream"})
	}
	for i, l := range m.Libraries {
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: fmt.Sprintf("SPDXRef-Library-%d", i+1), Name: noassert(l.ProvidedBy), VersionInfo: l.MinVersion,
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION",
			CopyrightText: "NOASSERTION", Comment: "provides " + l.Soname + " (runtime dependency " + l.Package + ")",
		})
	}
	for i, a := range m.Artifacts {
		id := fmt.Sprintf("SPDXRef-Package-%d", i+1)
		doc.Packages = append(doc.Packages, spdxPackage{
			SPDXID: id, Name: a.Name, VersionInfo: a.Version, PackageFileName: a.File,
			Supplier: "Organization: " + noassert(vendor), DownloadLocation: "NOASSERTION",
			Checksums:        []spdxChecksum{{"SHA256", a.SHA256}},
			LicenseConcluded: "NOASSERTION", LicenseDeclared: noassert(license), CopyrightText: "NOASSERTION",
			Comment: a.Format + " package for " + m.Target.String(), Purpose: "INSTALL",
		})
		doc.Relationships = append(doc.Relationships,
			spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", id},
			spdxRelationship{id, "GENERATED_FROM", "SPDXRef-Upstream"})
		for j := range m.Libraries {
			doc.Relationships = append(doc.Relationships, spdxRelationship{id, "DEPENDS_ON", fmt.Sprintf("SPDXRef-Library-%d", j+1)})
		}
	}
	return marshalJSON(doc)
}
