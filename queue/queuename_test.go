package queue

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidQueueName: the loop accepts exactly what the rule, written as a
// regexp, does: every name of up to 3 characters over a set of characters
// in and around the allowed ones, and the length bounds.
func TestValidQueueName(t *testing.T) {
	t.Parallel()
	rule := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)
	chars := []string{"a", "z", "A", "Z", "0", "9", "_", ".", ":", "-", " ", "/", "@", "[", "`", "{", "é", "\x00", "\n"}
	names := []string{""}
	for range 3 {
		var longer []string
		for _, n := range names {
			for _, c := range chars {
				longer = append(longer, n+c)
			}
		}
		names = append(names, longer...)
	}
	names = append(names, strings.Repeat("a", 128), strings.Repeat("a", 129), "a"+strings.Repeat("-", 127))
	for _, n := range names {
		if got, want := ValidQueueName(n), rule.MatchString(n); got != want {
			t.Errorf("ValidQueueName(%q) = %v, want %v", n, got, want)
		}
	}
}
