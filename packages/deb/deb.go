// Package deb reads Debian binary packages (.deb) without dpkg: the ar container, then the
// data.tar.{xz,zst,gz} member, so the builder can unpack packages as an ordinary user.
package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const arMagic = "!<arch>\n"

// Walk calls fn for every entry of the package's data archive, in archive order.
// Entry names are cleaned of their leading "./".
func Walk(r io.Reader, fn func(h *tar.Header, body io.Reader) error) error {
	br := bufio.NewReader(r)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return errors.New("deb: not an ar archive")
	}
	for {
		name, size, err := nextMember(br)
		if err == io.EOF {
			return errors.New("deb: no data.tar member")
		}
		if err != nil {
			return err
		}
		body := io.LimitReader(br, size)
		if strings.HasPrefix(name, "data.tar") {
			return walkTar(name, body, fn)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return fmt.Errorf("deb: skip member %s: %w", name, err)
		}
		if size%2 == 1 {
			br.ReadByte()
		}
	}
}

func nextMember(br *bufio.Reader) (string, int64, error) {
	hdr := make([]byte, 60)
	if _, err := io.ReadFull(br, hdr); err != nil {
		if err == io.ErrUnexpectedEOF {
			return "", 0, errors.New("deb: truncated ar header")
		}
		return "", 0, err
	}
	if hdr[58] != '`' || hdr[59] != '\n' {
		return "", 0, errors.New("deb: bad ar member header")
	}
	name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("deb: member %s: bad size %q", name, hdr[48:58])
	}
	return name, size, nil
}

func walkTar(member string, r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	var dr io.Reader
	switch {
	case strings.HasSuffix(member, ".xz"):
		x, err := xz.NewReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return fmt.Errorf("deb: %s: %w", member, err)
		}
		dr = x
	case strings.HasSuffix(member, ".zst"):
		z, err := zstd.NewReader(r)
		if err != nil {
			return fmt.Errorf("deb: %s: %w", member, err)
		}
		defer z.Close()
		dr = z
	case strings.HasSuffix(member, ".gz"):
		g, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("deb: %s: %w", member, err)
		}
		dr = g
	case member == "data.tar":
		dr = r
	default:
		return fmt.Errorf("deb: unsupported compression of %s", member)
	}
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deb: %s: %w", member, err)
		}
		h.Name = strings.TrimPrefix(strings.TrimPrefix(h.Name, "."), "/")
		if h.Name == "" {
			continue
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// ReadFile returns the contents of one file of the package's data archive.
func ReadFile(r io.Reader, name string) ([]byte, error) {
	var out []byte
	found := false
	err := Walk(r, func(h *tar.Header, body io.Reader) error {
		if found || h.Name != name {
			return nil
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, body); err != nil {
			return err
		}
		out, found = buf.Bytes(), true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("deb: %s not in package", name)
	}
	return out, nil
}
