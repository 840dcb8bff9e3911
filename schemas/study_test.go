package schemas

import (
	"strings"
	"testing"
)

// ValidParticipantID accepts 3 to 32 of A-Z, a-z, 0-9, _ and -, nothing else.
func TestValidParticipantID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "A_b-9": true, strings.Repeat("x", 32): true,
		"ab": false, strings.Repeat("x", 33): false, "": false,
		"ab c": false, "abc!": false, "abé": false, "a.bc": false, "abc\n": false,
	} {
		if got := ValidParticipantID(id); got != want {
			t.Errorf("%q: %v, want %v", id, got, want)
		}
	}
}
