package image

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// echoTB is a test whose failure messages are logged again, last of all, by a cleanup: a long
// test logs each guest's console when it fails, and CI shows the end of the output around the
// test's FAIL line, where the consoles would otherwise bury the failure itself.
type echoTB struct {
	testing.TB
	mu   sync.Mutex
	msgs []string
}

// echoFailures wraps t; call it before anything registers a cleanup, so that the echo is the last
// one to run.
func echoFailures(t testing.TB) *echoTB {
	e := &echoTB{TB: t}
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(e.msgs) > 0 {
			t.Logf("%s failed (the consoles are above):\n  %s", t.Name(), strings.Join(e.msgs, "\n  "))
		}
	})
	return e
}

func (e *echoTB) note(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, msg)
}

func (e *echoTB) Fatalf(format string, args ...any) {
	e.TB.Helper()
	e.note(fmt.Sprintf(format, args...))
	e.TB.Fatalf(format, args...)
}

func (e *echoTB) Fatal(args ...any) {
	e.TB.Helper()
	e.note(fmt.Sprint(args...))
	e.TB.Fatal(args...)
}

func (e *echoTB) Errorf(format string, args ...any) {
	e.TB.Helper()
	e.note(fmt.Sprintf(format, args...))
	e.TB.Errorf(format, args...)
}

func (e *echoTB) Error(args ...any) {
	e.TB.Helper()
	e.note(fmt.Sprint(args...))
	e.TB.Error(args...)
}
