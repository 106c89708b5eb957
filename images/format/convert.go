package format

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ballast-os/ballast/contract"
)

// Options are the inputs a format would otherwise take from the clock or a
// random source; taking them from the caller keeps the output reproducible.
type Options struct {
	// Time is stamped into the VHD footer, the tar entry and the gzip header.
	// The zero value stands for the earliest time each format can hold.
	Time time.Time
	// UUID is the VHD unique id and the VMDK ddb.uuid (from which its CID is
	// derived too). Callers usually derive it from the image's root hash.
	UUID [16]byte
	// Compress stores QCOW2 clusters deflate-compressed. VMDK and GCE are
	// always compressed; raw and VHD never are.
	Compress bool
	// Name, Version and Description are the product the OVA describes (its
	// virtual machine's name and the ProductSection vSphere shows) and the
	// AMI's name and description. Name also names the files inside the OVA;
	// without it they are named after the OVA.
	Name        string
	Version     string
	Description string
	// Arch is the disk's architecture, for the AMI; "" is contract.DefaultArch.
	// The OVA describes an x86-64 vSphere guest and refuses any other.
	Arch contract.Arch
}

// converter writes the disk read from in to out. out is a fresh, empty file
// that is removed if the converter fails; name is the file name the output
// will finally have, for formats that record it.
type converter func(ctx context.Context, in *input, out outFile, name string, opts Options) error

// outFile is what a converter writes to: the temporary output file.
type outFile interface {
	io.Writer
	io.WriterAt
	Truncate(size int64) error
	// Name is the temporary file's path: converters that need scratch
	// space make it beside the output.
	Name() string
}

// Convert writes the raw disk image at rawPath to outPath in format f. The
// output appears at outPath only once complete; on error nothing is left
// behind. Converting raw to the same path is a no-op.
//
// The output depends only on the input's bytes, f, opts and, for VMDK,
// whose descriptor names its own file, the base name of outPath. The
// input is read once, front to back, skipping its holes; memory holds a
// 1 MiB buffer and the format's tables (for QCOW2, 8 bytes per 64 KiB of
// data), never the disk.
func Convert(ctx context.Context, rawPath, outPath string, f Format, opts Options) error {
	conv, err := converterFor(f)
	if err != nil {
		return fmt.Errorf("convert %s to %s: %w", rawPath, outPath, err)
	}
	if err := convert(ctx, rawPath, outPath, f, conv, opts); err != nil {
		return fmt.Errorf("convert %s to %s %s: %w", rawPath, f, outPath, err)
	}
	return nil
}

func converterFor(f Format) (converter, error) {
	switch f {
	case Raw:
		return writeRaw, nil
	case QCOW2:
		return writeQCOW2, nil
	case VMDK:
		return writeVMDK, nil
	case VHD:
		return writeVHD, nil
	case GCE:
		return writeGCE, nil
	case OVA:
		return writeOVA, nil
	case AMI:
		return writeAMI, nil
	}
	_, err := Parse(string(f))
	return nil, err
}

func convert(ctx context.Context, rawPath, outPath string, f Format, conv converter, opts Options) error {
	in, err := openInput(rawPath)
	if err != nil {
		return err
	}
	defer in.Close()
	same, err := in.sameAs(outPath)
	if err != nil {
		return err
	}
	if same {
		if f == Raw {
			return nil
		}
		return fmt.Errorf("output would overwrite the input")
	}
	return writeAtomically(outPath, func(out outFile, name string) error {
		return conv(ctx, in, out, name, opts)
	})
}
