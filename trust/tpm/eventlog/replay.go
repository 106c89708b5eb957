package eventlog

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// startupLocality is the EV_NO_ACTION event by which firmware records that the TPM was started
// from a locality other than 0; the TPM then starts PCR 0 at that locality's number.
var startupLocality = []byte("StartupLocality\x00")

// initial is what a PCR holds after TPM2_Startup: zeros, except PCRs 17-22 (the dynamic root of
// trust's) which start as all ones.
func initial(pcr, size int) []byte {
	v := make([]byte, size)
	if pcr >= 17 && pcr <= 22 {
		for i := range v {
			v[i] = 0xff
		}
	}
	return v
}

// Replay computes the PCR values the log's events add up to in one bank, for every PCR the log
// extends.
func (l Log) Replay(bank Alg) (map[int][]byte, error) {
	h, ok := bank.hash()
	if !ok || !h.Available() {
		return nil, fmt.Errorf("eventlog: cannot replay the %s bank", bank)
	}
	if !slices.ContainsFunc(l.SpecID.Algorithms, func(a Algorithm) bool { return a.ID == bank }) {
		return nil, fmt.Errorf("eventlog: the log has no %s bank", bank)
	}
	pcrs := map[int][]byte{}
	for _, e := range l.Events {
		if e.Type == EVNoAction {
			// Not extended; only the locality marker changes a PCR's starting value.
			if e.PCR == 0 && len(e.Data) == len(startupLocality)+1 && bytes.HasPrefix(e.Data, startupLocality) {
				if _, started := pcrs[0]; !started {
					v := initial(0, h.Size())
					v[len(v)-1] = e.Data[len(startupLocality)]
					pcrs[0] = v
				}
			}
			continue
		}
		d, ok := e.Digests[bank]
		if !ok {
			return nil, fmt.Errorf("eventlog: event %d at offset %d (PCR %d %s) has no %s digest", e.Index, e.Offset, e.PCR, e.Type, bank)
		}
		cur, ok := pcrs[e.PCR]
		if !ok {
			cur = initial(e.PCR, h.Size())
		}
		hh := h.New()
		hh.Write(cur)
		hh.Write(d)
		pcrs[e.PCR] = hh.Sum(nil)
	}
	return pcrs, nil
}

// Mismatch is a PCR whose value the log does not account for.
type Mismatch struct {
	PCR      int    `json:"pcr"`
	Replayed string `json:"replayed"`
	Actual   string `json:"actual"`
}

// Check compares replayed values (from Replay) with the TPM's actual ones and lists, in PCR order,
// every PCR of actual that differs. A PCR the log never extends is expected at its reset value.
func Check(replayed, actual map[int][]byte) []Mismatch {
	var out []Mismatch
	for _, p := range slices.Sorted(maps.Keys(actual)) {
		want, ok := replayed[p]
		if !ok {
			want = initial(p, len(actual[p]))
		}
		if !bytes.Equal(want, actual[p]) {
			out = append(out, Mismatch{PCR: p, Replayed: hex.EncodeToString(want), Actual: hex.EncodeToString(actual[p])})
		}
	}
	return out
}
