package userdata

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// OVFEnvFile is the OVF environment document's name on the volume VMware attaches.
const OVFEnvFile = "ovf-env.xml"

// OVFUserDataKey is the vApp property that carries user data, base64-encoded, as cloud-init's
// OVF datasource reads it and as Ballast's OVA declares it.
const OVFUserDataKey = "user-data"

// ovfEnvNS is the DMTF OVF environment namespace (DSP8027), of the Environment element and of its
// oe:key and oe:value attributes.
const ovfEnvNS = "http://schemas.dmtf.org/ovf/environment/1"

// maxOVFEnv bounds ovf-env.xml: user data of maxRaw bytes as base64, and room for the platform,
// network and other properties' sections around it.
const maxOVFEnv = maxRaw/3*4 + 64<<10

// OVF reads user data from VMware's OVF environment with the ISO transport: at power-on vSphere
// attaches a CD-ROM holding ovf-env.xml (DSP0243 and DSP8027), whose PropertySection has the
// values of the vApp properties the OVA declared, user-data among them. vSphere labels the volume
// "OVF ENV", but any ISO9660 volume with the file in its root is taken, the label being only
// what one product writes. The volume is found and mounted as NoCloud's is.
type OVF struct {
	SysBlock    string        // default /sys/class/block
	DevDir      string        // default /dev
	RunDir      string        // where the volume is mounted while it is read; default /run
	Wait        time.Duration // as NoCloud.Wait
	BeforeMount func(context.Context) error
}

func (o OVF) withDefaults() OVF {
	n := NoCloud{SysBlock: o.SysBlock, DevDir: o.DevDir, RunDir: o.RunDir}.withDefaults()
	o.SysBlock, o.DevDir, o.RunDir = n.SysBlock, n.DevDir, n.RunDir
	return o
}

// Fetch finds the volume, mounts it read-only and reads the user-data property from ovf-env.xml.
// No such volume, or a document without the property or with an empty one (the OVA's default), is
// ErrNotFound; a document that is not an OVF environment or a value that is not base64 is an
// error naming ovf-env.xml.
func (o OVF) Fetch(ctx context.Context) ([]byte, string, error) {
	o = o.withDefaults()
	dev, err := o.Find(ctx)
	if err != nil {
		return nil, OVFEnvFile, err
	}
	origin := dev.Path + ":" + OVFEnvFile
	if o.BeforeMount != nil {
		// As NoCloud: a failed wait is tried past, the mount tells whether isofs is there.
		if err := o.BeforeMount(ctx); err != nil && ctx.Err() != nil {
			return nil, origin, err
		}
	}
	env, err := readMounted(dev, o.RunDir, "ballast-ovfenv-", func(dir string) ([]byte, error) {
		return readOVFEnv(dir, dev.Path)
	})
	if err != nil {
		return nil, origin, err
	}
	data, err := ovfUserData(env)
	return data, origin, err
}

// Find returns the first block device, in name order, holding an ISO9660 volume with the OVF
// environment in its root directory.
func (o OVF) Find(ctx context.Context) (Device, error) {
	o = o.withDefaults()
	return waitForDevice(ctx, o.Wait, func() (Device, error) {
		dev, ok, err := scanBlock(o.SysBlock, o.DevDir, func(f *os.File, vol Volume) bool {
			if vol.FSType != FSISO9660 {
				return false
			}
			names, err := isoRootFiles(f)
			return err == nil && hasOVFEnv(names)
		})
		if err == nil && !ok {
			err = fmt.Errorf("no ISO9660 volume holds %s: %w", OVFEnvFile, ErrNotFound)
		}
		return dev, err
	})
}

// hasOVFEnv tells whether ISO9660 root names include the OVF environment. Its primary name is
// what mkisofs makes of ovf-env.xml: upper case, '-' (not a d-character) as '_', with a version.
func hasOVFEnv(names []string) bool {
	for _, n := range names {
		n, _, _ = strings.Cut(n, ";")
		n = strings.TrimSuffix(strings.ToUpper(n), ".")
		if strings.ReplaceAll(n, "-", "_") == "OVF_ENV.XML" {
			return true
		}
	}
	return false
}

// readOVFEnv reads the document from the mounted volume: ovf-env.xml by its Rock Ridge or Joliet
// name, or ovf_env.xml, the name isofs shows for a volume with ISO9660 names alone.
func readOVFEnv(dir, dev string) ([]byte, error) {
	for _, name := range []string{OVFEnvFile, "ovf_env.xml"} {
		b, err := readUpTo(filepath.Join(dir, name), maxOVFEnv)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return b, err
	}
	return nil, fmt.Errorf("%s has no %s: %w", dev, OVFEnvFile, ErrNotFound)
}

// ovfEnvironment is the part of DSP8027's Environment element Ballast reads: the properties of
// the virtual machine itself (an Entity element would hold those of another member of a vApp).
type ovfEnvironment struct {
	XMLName    xml.Name      `xml:"http://schemas.dmtf.org/ovf/environment/1 Environment"`
	Properties []ovfProperty `xml:"http://schemas.dmtf.org/ovf/environment/1 PropertySection>Property"`
}

type ovfProperty struct {
	Key   *string `xml:"http://schemas.dmtf.org/ovf/environment/1 key,attr"`
	Value *string `xml:"http://schemas.dmtf.org/ovf/environment/1 value,attr"`
}

// ovfUserData returns the decoded user-data property of an OVF environment document.
func ovfUserData(env []byte) ([]byte, error) {
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%s: %s", OVFEnvFile, fmt.Sprintf(format, args...))
	}
	if len(env) > maxOVFEnv {
		return fail("larger than %d bytes", maxOVFEnv)
	}
	dec := xml.NewDecoder(bytes.NewReader(env))
	var e ovfEnvironment
	if err := dec.Decode(&e); err != nil {
		var start xml.UnmarshalError
		if errors.As(err, &start) {
			return fail("not an OVF environment: %v", err)
		}
		return fail("not well-formed XML: %v", err)
	}
	// Decode stops at the root's end; anything but comments and white space after it is junk
	// the document must not have.
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fail("not well-formed XML after the Environment element: %v", err)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fail("text after the Environment element")
			}
		default:
			return fail("content after the Environment element")
		}
	}
	var value *string
	for i, p := range e.Properties {
		if p.Key == nil {
			return fail("PropertySection: property %d has no oe:key", i+1)
		}
		if *p.Key != OVFUserDataKey {
			continue
		}
		if value != nil {
			return fail("property %s given twice", OVFUserDataKey)
		}
		if p.Value == nil {
			return fail("property %s has no oe:value", OVFUserDataKey)
		}
		value = p.Value
	}
	if value == nil {
		return nil, fmt.Errorf("%s has no property %s: %w", OVFEnvFile, OVFUserDataKey, ErrNotFound)
	}
	// XML turns line breaks in an attribute into spaces: wrapped base64 arrives with spaces.
	v := strings.Join(strings.Fields(*value), "")
	if v == "" {
		return nil, fmt.Errorf("%s: property %s is empty: %w", OVFEnvFile, OVFUserDataKey, ErrNotFound)
	}
	if len(v) > maxRaw/3*4+4 {
		return fail("property %s is larger than %d bytes of base64", OVFUserDataKey, maxRaw/3*4+4)
	}
	data, err := decodeBase64(v)
	if err != nil {
		return fail("property %s is not base64: %v", OVFUserDataKey, err)
	}
	if len(data) > maxRaw {
		return fail("property %s decodes to more than %d bytes", OVFUserDataKey, maxRaw)
	}
	return data, nil
}

// decodeBase64 decodes standard or URL-safe base64, padding optional.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	data, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		if d, uerr := base64.RawURLEncoding.DecodeString(s); uerr == nil {
			return d, nil
		}
	}
	return data, err
}
