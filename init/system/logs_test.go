package system

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ballast-os/ballast/contract"
	"github.com/ballast-os/ballast/init/kmsg"
	"github.com/ballast-os/ballast/init/system/logs"
)

// readLog returns a source's current log file under the Init's root, as records.
func readLog(t *testing.T, i *Init, source string) []contract.LogRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(i.path(contract.PersistentLogDir), contract.LogFileName(source, 0)))
	if err != nil {
		t.Fatal(err)
	}
	var recs []contract.LogRecord
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		r, err := contract.ParseLogRecord(l)
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func texts(recs []contract.LogRecord) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Text + "\n")
	}
	return b.String()
}

// The init's console lines, those before the data partition was there included, are its log,
// after the boot's marker; they are in the log again after the shutdown, which closes the files.
func TestBootLogsTheConsole(t *testing.T) {
	i, k, _ := testInit(t)
	machine(t, i, "testdata/mountinfo")
	write(t, i, contract.ImageInfoPath, `{"variant":"qemu","version":"0.1.0","services":[]}`)
	write(t, i, contract.BootID, "4e1b9bd4-4b0e-4a53-9d3c-1c7f0d0b0e11\n")
	write(t, i, contract.OSReleasePath, "VERSION_ID=0.1.0\nVARIANT_ID=qemu\n")
	write(t, i, "/proc/cmdline", "roothash=ab ballast.slot=a\n")
	k.busy["/local"] = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	i.boot(ctx)
	<-i.announced
	<-i.bootDone
	i.Shutdown(PowerOff, "test")

	got := texts(readLog(t, i, contract.InitLogSource))
	// The init line was printed before the logs were open.
	for _, want := range []string{
		"\nballast: init variant=qemu version=0.1.0 services=\n",
		"\nballast: shutdown power off (test)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("init log lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, "-- boot 4e1b9bd4-4b0e-4a53-9d3c-1c7f0d0b0e11 version 0.1.0 --\n") {
		t.Errorf("the init log does not start with the boot marker:\n%s", got)
	}
	// The power off line comes after the files were closed: console only.
	if strings.Contains(got, "ballast: power off") {
		t.Errorf("a line reached the log after it was closed:\n%s", got)
	}
}

// fakeKmsg hands out records like /dev/kmsg and blocks at the end until closed; before[n] runs
// before the n-th record (from 0) is handed out.
type fakeKmsg struct {
	mu     sync.Mutex
	reads  []string
	before map[int]func()
	n      int
	closed chan struct{}
	once   sync.Once
}

func (f *fakeKmsg) Read(p []byte) (int, error) {
	f.mu.Lock()
	if len(f.reads) > 0 {
		r := f.reads[0]
		f.reads = f.reads[1:]
		hook := f.before[f.n]
		f.n++
		f.mu.Unlock()
		if hook != nil {
			hook()
		}
		return copy(p, r), nil
	}
	f.mu.Unlock()
	<-f.closed
	return 0, os.ErrClosed
}

func (f *fakeKmsg) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func TestKernelLog(t *testing.T) {
	i, _, out := testInit(t)
	booted := time.Date(2025, 6, 7, 8, 0, 0, 0, time.UTC)
	// The init reads the kernel's records at uptime 10 s; the readings of the two clocks are a few
	// microseconds apart, until the wall clock is set an hour ahead before the last record.
	var mu sync.Mutex
	readings, stepped := 0, false
	i.logs = newTestStore(t, i, func() (time.Time, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		readings++
		wall := booted.Add(10*time.Second + time.Duration(readings%3)*time.Microsecond)
		if stepped {
			wall = wall.Add(time.Hour)
		}
		return wall, 10 * time.Second
	})
	if err := i.logs.Open("b", "v"); err != nil {
		t.Fatal(err)
	}
	src, _ := i.logs.Source(contract.KernelLogSource)
	f := &fakeKmsg{closed: make(chan struct{}), reads: []string{
		"5,0,0,-;Linux version 6.1.0-50-cloud-amd64\n",
		"6,1,1500000,-;virtio_blk virtio1: [vda] 4194304 512-byte logical blocks\n SUBSYSTEM=virtio\n",
		"4,5,2000000,-;late \\x5c \\xc3\\xa9\n",
	}, before: map[int]func(){2: func() { mu.Lock(); stepped = true; mu.Unlock() }}}
	done := make(chan struct{})
	go func() { i.logKernel(kmsg.NewReader(f), src); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		i.logs.Sync()
		b, _ := os.ReadFile(filepath.Join(i.path(contract.PersistentLogDir), "kernel.log"))
		if strings.Count(string(b), "\n") >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.Close()
	<-done
	recs := readLog(t, i, contract.KernelLogSource)
	if len(recs) != 5 {
		t.Fatalf("kernel log: %q", texts(recs))
	}
	want := []struct {
		at   time.Duration
		prio int
		text string
	}{
		{0, contract.NoPriority, "-- boot b version v --"},
		{0, 5, "Linux version 6.1.0-50-cloud-amd64"},
		{1500 * time.Millisecond, 6, "virtio_blk virtio1: [vda] 4194304 512-byte logical blocks"},
		{10 * time.Second, contract.NoPriority, "-- 3 kernel messages lost: overwritten before they were read --"},
		{2 * time.Second, 4, `late \ é`},
	}
	for n, w := range want {
		r := recs[n]
		if r.Mono != w.at || r.Priority != w.prio || r.Text != w.text {
			t.Errorf("record %d = %+v, want %v since boot, <%d> %q", n, r, w.at, w.prio, w.text)
		}
	}
	// A kernel record's wall time is the boot's plus its own uptime, not when it was read; the
	// boot's wall time stays put between readings, and moves when the clock is set.
	base := func(r contract.LogRecord) time.Time { return r.Time.Add(-r.Mono) }
	if !base(recs[1]).Equal(base(recs[2])) || base(recs[1]).Sub(booted).Abs() > 10*time.Microsecond {
		t.Errorf("boot time of the first records: %v and %v, want both %v", base(recs[1]), base(recs[2]), booted)
	}
	if d := base(recs[4]).Sub(booted.Add(time.Hour)).Abs(); d > 10*time.Microsecond {
		t.Errorf("boot time after the clock was set: %v, want %v", base(recs[4]), booted.Add(time.Hour))
	}
	if d := recs[3].Time.Sub(booted.Add(time.Hour + 10*time.Second)).Abs(); d > 10*time.Microsecond {
		t.Errorf("the note of lost records is stamped %v, want when it was written", recs[3].Time)
	}
	if strings.Contains(out.String(), "error") {
		t.Errorf("console: %s", out)
	}
}

func newTestStore(t *testing.T, i *Init, clock func() (time.Time, time.Duration)) *logs.Store {
	t.Helper()
	s := logs.New(logs.Options{Dir: i.path(contract.PersistentLogDir), Volatile: i.path(contract.LogDir), Clock: clock})
	t.Cleanup(func() { s.Close() })
	return s
}

// pending returns the records not handed out yet.
func (f *fakeKmsg) pending() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}
