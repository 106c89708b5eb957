package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/ballast-os/ballast/apiserver/userdata"
	"github.com/ballast-os/ballast/contract"
)

// sourceConfig is what the user data sources are made from: the flags, and image.json's list.
type sourceConfig struct {
	// Names are image.json's userdata_sources; none means contract.UserDataSources().
	Names []string
	// File (--user-data) replaces the first source: a development host or a test gives its
	// user data in a file instead of a seed volume.
	File        string
	RunDir      string
	Wait        time.Duration
	BeforeMount func(context.Context) error
	// IMDS is the metadata service's endpoint, "" when off (imdsEndpoint); a listed imds source
	// is left out without one.
	IMDS        string
	IMDSTimeout time.Duration
	IMDSWait    time.Duration
	Cmdline     string
}

// userDataSources builds the sources in the order the image lists them (later ones win key by
// key), or in the default order. The OVF environment is in the default: looking for it is one read
// of a few sectors per block device, in the scan NoCloud makes anyway, and a generic image
// deployed on vSphere then takes the user data its vApp property carries. Names the apiserver does
// not know, and repeated ones, are left out and reported; the rest are used.
func userDataSources(c sourceConfig) ([]userdata.NamedSource, error) {
	names := c.Names
	if len(names) == 0 {
		names = contract.UserDataSources()
	}
	var (
		sources []userdata.NamedSource
		bad     []string
		seen    = map[string]bool{}
	)
	for _, name := range names {
		if seen[name] {
			bad = append(bad, fmt.Sprintf("%q listed twice", name))
			continue
		}
		seen[name] = true
		var src userdata.Source
		switch name {
		case contract.UserDataNoCloud:
			src = userdata.NoCloud{RunDir: c.RunDir, Wait: c.Wait, BeforeMount: c.BeforeMount}
		case contract.UserDataOVF:
			src = userdata.OVF{RunDir: c.RunDir, Wait: c.Wait, BeforeMount: c.BeforeMount}
		case contract.UserDataIMDS:
			if c.IMDS == "" {
				continue
			}
			src = userdata.IMDS{Endpoint: c.IMDS, Timeout: c.IMDSTimeout, Wait: c.IMDSWait}
		case contract.UserDataCmdline:
			src = userdata.Cmdline{Path: c.Cmdline}
		default:
			bad = append(bad, fmt.Sprintf("unknown source %q (known: %s)", name, strings.Join(contract.UserDataSources(), ", ")))
			continue
		}
		sources = append(sources, userdata.NamedSource{Name: name, Source: src})
	}
	if c.File != "" {
		file := userdata.NamedSource{Name: "file", Source: userdata.File(c.File)}
		if len(sources) == 0 {
			sources = []userdata.NamedSource{file}
		} else {
			sources[0] = file
		}
	}
	if len(bad) != 0 {
		return sources, fmt.Errorf("user data sources: %s", strings.Join(bad, "; "))
	}
	return sources, nil
}

// imdsEndpoint resolves --imds-endpoint: "auto" is the metadata service on EC2 and off elsewhere,
// "off" (or "") is off, anything else is the endpoint. Off is "".
func imdsEndpoint(flag string, onEC2 func() bool) string {
	switch flag {
	case "auto":
		if onEC2() {
			return userdata.IMDSEndpoint
		}
		return ""
	case "off":
		return ""
	}
	return flag
}

// readImage reads image.json. An image without the file (a test tree, a build from before
// updates) has the default update policy, no repository and the default user data sources.
func readImage(path string) (contract.Image, error) {
	img := contract.Image{Updates: contract.DefaultUpdatePolicy()}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return img, nil
	}
	if err != nil {
		return img, fmt.Errorf("image description: %w", err)
	}
	var read contract.Image
	if err := json.Unmarshal(b, &read); err != nil {
		return img, fmt.Errorf("image description %s: %w", path, err)
	}
	return read, nil
}

// sourceNames lists the sources' names, for the log.
func sourceNames(sources []userdata.NamedSource) []string {
	names := make([]string, 0, len(sources))
	for _, s := range sources {
		names = append(names, s.Name)
	}
	return names
}
