package pcr

import (
	"bytes"
	"debug/pe"
	"fmt"
)

// KernelImage is the PCR systemd-stub measures the UKI's sections into.
const KernelImage = 11

// UKISections lists the PE sections systemd-stub 252 knows, in the order it measures them (its
// UnifiedSection enum). The order is what makes PCR 11 predictable, so it is fixed here rather
// than taken from the order of the sections in the PE file.
var UKISections = []string{".linux", ".osrel", ".cmdline", ".initrd", ".splash", ".dtb", ".pcrsig", ".pcrpkey"}

// measured reports whether systemd-stub 252 extends PCR 11 with a section. .pcrsig is not
// measured because it holds the signature of the very PCR 11 value being computed.
func measured(name string) bool {
	for _, s := range UKISections {
		if s == name {
			return name != ".pcrsig"
		}
	}
	return false
}

// PredictUKI returns the PCR 11 value systemd-stub 252 produces, starting from Zero, for a UKI
// with the given sections (name, e.g. ".linux", to content as it is in memory). For each measured
// section that is present and not empty, in UKISections order, the stub makes two measurements:
// the section name including its terminating NUL, then the section's content. Sections the stub
// does not know are ignored, as the stub ignores them.
func PredictUKI(sections map[string][]byte) Value {
	v := Zero
	for _, name := range UKISections {
		data := sections[name]
		if !measured(name) || len(data) == 0 {
			continue
		}
		v = ExtendData(v, append([]byte(name), 0))
		v = ExtendData(v, data)
	}
	return v
}

// Sections reads the sections systemd-stub 252 would measure out of a PE image, each as the
// firmware lays it out in memory: VirtualSize bytes, of which the part beyond the raw data in
// the file is zeros. The stub measures the in-memory section, so VirtualSize and not the
// file-aligned SizeOfRawData is the length that counts.
func Sections(image []byte) (map[string][]byte, error) {
	f, err := pe.NewFile(bytes.NewReader(image))
	if err != nil {
		return nil, fmt.Errorf("pcr: reading the UKI as a PE image: %w", err)
	}
	defer f.Close()
	out := map[string][]byte{}
	for i, s := range f.Sections {
		if !measured(s.Name) && s.Name != ".pcrsig" {
			continue
		}
		if _, dup := out[s.Name]; dup {
			// Which copy the stub would use is an accident of its search loop; a UKI like this
			// is malformed, and a prediction for it would be a guess.
			return nil, fmt.Errorf("pcr: UKI has section %s twice (section %d)", s.Name, i)
		}
		n := int64(s.VirtualSize)
		raw := int64(s.Size)
		if n > int64(len(image)) && n > raw {
			// Zero fill beyond both the file and the raw data is not a UKI section but a corrupt
			// header, and believing it would allocate whatever it claims.
			return nil, fmt.Errorf("pcr: section %s has VirtualSize %d, larger than the %d-byte image", s.Name, n, len(image))
		}
		data := make([]byte, n)
		if copyLen := min(n, raw); copyLen > 0 {
			if int64(s.Offset)+copyLen > int64(len(image)) {
				return nil, fmt.Errorf("pcr: section %s (offset %d, %d bytes) runs past the end of the %d-byte image", s.Name, s.Offset, copyLen, len(image))
			}
			copy(data, image[int64(s.Offset):int64(s.Offset)+copyLen])
		}
		out[s.Name] = data
	}
	return out, nil
}

// PredictUKIFile is PredictUKI for the sections of a PE image.
func PredictUKIFile(image []byte) (Value, error) {
	s, err := Sections(image)
	if err != nil {
		return Value{}, err
	}
	if len(s[".linux"]) == 0 {
		// The stub refuses to boot without a kernel, so there is no PCR 11 value to predict.
		return Value{}, fmt.Errorf("pcr: UKI has no .linux section")
	}
	return PredictUKI(s), nil
}
