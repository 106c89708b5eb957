package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ballast-os/ballast/apiserver/apitypes"
	"github.com/ballast-os/ballast/apiserver/datastore"
	"github.com/ballast-os/ballast/apiserver/settings"
	"github.com/ballast-os/ballast/apiserver/userdata"
)

// userDataTx is the transaction defaults and user data are committed through, apart from the one
// API clients use.
const userDataTx = "userdata"

// DefaultsName is the name GET /userdata reports the image's defaults by.
const DefaultsName = "defaults"

// takeUserData brings in the image's defaults (every start, for keys not set yet) and, on the
// first boot, the user data sources in order, later ones overriding earlier ones. A source that
// cannot be read, parsed or validated contributes nothing; the others still do. What happened is
// printed on the console and returned for GET /userdata.
func takeUserData(ctx context.Context, store *datastore.Store, firstBoot bool, defaults userdata.Source, sources []userdata.NamedSource, console io.Writer) apitypes.UserData {
	st := apitypes.UserData{State: apitypes.UserDataNotChecked, Sources: []apitypes.UserDataSource{}}
	live := store.Live()
	var acc settings.Settings
	// consider adds a source's settings to what will be committed, unless together with what
	// came before they would break a rule across keys.
	consider := func(origin string, data []byte, s settings.Settings) error {
		next := settings.Merge(acc, s)
		if err := settings.Merge(next, live).ValidateLive(); err != nil {
			return userdata.WithLine(origin, data, err)
		}
		acc = next
		return nil
	}
	read := func(name string, src userdata.Source) apitypes.UserDataSource {
		res := apitypes.UserDataSource{Name: name}
		data, origin, err := src.Fetch(ctx)
		res.Origin = origin
		if errors.Is(err, userdata.ErrNotFound) {
			res.State, res.Error = apitypes.UserDataNone, err.Error()
			return res
		}
		if err == nil {
			var s settings.Settings
			if s, err = userdata.Parse(origin, data); err == nil {
				if err = consider(origin, data, s); err == nil {
					res.State, res.Keys = apitypes.UserDataApplied, s.Keys()
					return res
				}
			}
		} else {
			err = fmt.Errorf("%s: %w", origin, err)
		}
		fmt.Fprintf(console, "ballast: userdata: %v\n", err)
		res.State, res.Error = apitypes.UserDataInvalid, err.Error()
		var ue *userdata.Error
		if errors.As(err, &ue) {
			res.Line, res.Key = ue.Line, ue.Key
		}
		return res
	}

	if defaults != nil {
		st.Sources = append(st.Sources, read(DefaultsName, defaults))
	}
	if firstBoot {
		var none []string
		for _, ns := range sources {
			res := read(ns.Name, ns.Source)
			st.Sources = append(st.Sources, res)
			if res.State == apitypes.UserDataNone {
				none = append(none, res.Name+": "+strings.TrimSuffix(res.Error, ": "+userdata.ErrNotFound.Error()))
			}
		}
		st.State = summarize(&st)
		if st.State == apitypes.UserDataNone {
			fmt.Fprintf(console, "ballast: userdata: none (%s)\n", strings.Join(none, "; "))
		}
	}

	// Live settings win over defaults; on the first boot nothing is live yet, so user data wins
	// over defaults through the order of acc.
	final := settings.Merge(acc, live)
	if settings.Diff(live, final) == nil {
		return st
	}
	if err := commit(store, final); err != nil {
		fmt.Fprintf(console, "ballast: userdata: commit: %v\n", err)
		for i := range st.Sources {
			if st.Sources[i].State == apitypes.UserDataApplied {
				st.Sources[i].State, st.Sources[i].Error, st.Sources[i].Keys = apitypes.UserDataInvalid, "commit: "+err.Error(), nil
			}
		}
		if firstBoot {
			st.State = summarize(&st)
		}
		return st
	}
	for _, res := range st.Sources {
		if res.State != apitypes.UserDataApplied {
			continue
		}
		what := "settings"
		if res.Name == DefaultsName {
			what = "default settings"
		}
		fmt.Fprintf(console, "ballast: userdata: applied %d %s from %s\n", len(res.Keys), what, res.Origin)
	}
	return st
}

// summarize sets the top-level fields from the user data sources (not the defaults) and returns
// the overall state.
func summarize(st *apitypes.UserData) string {
	state := apitypes.UserDataNone
	st.Keys = nil
	for _, res := range st.Sources {
		if res.Name == DefaultsName {
			continue
		}
		switch res.State {
		case apitypes.UserDataInvalid:
			if state != apitypes.UserDataInvalid {
				state = apitypes.UserDataInvalid
				st.Source, st.Error, st.Line, st.Key = res.Origin, res.Error, res.Line, res.Key
			}
		case apitypes.UserDataApplied:
			if state == apitypes.UserDataNone {
				state = apitypes.UserDataApplied
				st.Source = res.Origin
			}
			st.Keys = append(st.Keys, res.Keys...)
		}
	}
	slices.Sort(st.Keys)
	st.Keys = slices.Compact(st.Keys)
	return state
}

func commit(store *datastore.Store, s settings.Settings) error {
	if err := store.Stage(userDataTx, s); err != nil {
		return err
	}
	if _, _, err := store.Commit(userDataTx); err != nil {
		// Leave nothing staged to be committed later by accident; the error is what matters.
		store.Discard(userDataTx)
		return err
	}
	return nil
}
