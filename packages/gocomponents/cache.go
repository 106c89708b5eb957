package gocomponents

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ballast-os/ballast/packages/digest"
)

// manifestName is written last into a finished cache entry; binary names cannot collide with it
// because they never start with a dot.
const manifestName = ".manifest.json"

// manifest records what an entry holds, so a hit can be checked without rebuilding.
type manifest struct {
	Component string
	Module    string
	Version   string
	Key       string
	Binaries  map[string]fileSum // binary name → content
}

type fileSum struct {
	Size   int64
	SHA256 string
}

// lookup returns the entry's manifest when every binary in it is present and intact. Any damage is
// reported as a miss (with the reason), never as a hit.
func lookup(dir string, c Component) (manifest, bool, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("%s: %w", manifestName, err)
	}
	for _, spec := range c.Binaries {
		want, ok := m.Binaries[spec.Name]
		if !ok {
			return m, false, fmt.Errorf("%s lacks %s", manifestName, spec.Name)
		}
		got, err := sumFile(filepath.Join(dir, spec.Name))
		if err != nil {
			return m, false, err
		}
		if got != want {
			return m, false, fmt.Errorf("%s changed since it was built", spec.Name)
		}
	}
	return m, true, nil
}

// store seals a finished temporary entry and renames it into place, so a reader sees a complete
// entry or none. If another build got there first its entry is kept: same key, same bytes.
func store(tmp, final string, m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, manifestName), b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(filepath.Join(final, manifestName)); serr == nil {
			return os.RemoveAll(tmp)
		}
		return err
	}
	return nil
}

func sumFile(name string) (fileSum, error) {
	st, err := os.Stat(name)
	if err != nil {
		return fileSum{}, err
	}
	sum, err := digest.File(name)
	if err != nil {
		return fileSum{}, err
	}
	return fileSum{Size: st.Size(), SHA256: sum}, nil
}
