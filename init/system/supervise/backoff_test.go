package supervise

import (
	"testing"
	"time"
)

func TestBackoffNext(t *testing.T) {
	ms := time.Millisecond
	b := Backoff{Initial: 100 * ms, Max: 30 * time.Second, Reset: 30 * time.Second}
	tests := []struct {
		name         string
		prev, uptime time.Duration
		want         time.Duration
	}{
		{"first restart", 0, 0, 100 * ms},
		{"doubles", 100 * ms, time.Second, 200 * ms},
		{"doubles again", 200 * ms, 0, 400 * ms},
		{"capped", 20 * time.Second, 0, 30 * time.Second},
		{"stays capped", 30 * time.Second, 29 * time.Second, 30 * time.Second},
		{"reset after a long run", 30 * time.Second, 30 * time.Second, 100 * ms},
		{"reset after a longer run", 3200 * ms, time.Hour, 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Next(tt.prev, tt.uptime); got != tt.want {
				t.Errorf("Next(%v, %v) = %v, want %v", tt.prev, tt.uptime, got, tt.want)
			}
		})
	}
}

func TestBackoffDefaults(t *testing.T) {
	got := Backoff{}.withDefaults()
	want := Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Reset: 30 * time.Second}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}
