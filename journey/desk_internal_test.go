package journey

import (
	"strings"
	"testing"
)

func TestIsYes(t *testing.T) {
	for text, want := range map[string]bool{
		"yes": true, "YES!": true, "  Yes please. ": true, "Okay": true, "y": true, "ok?": true,
		"no": false, "yes, but not now": false, "": false, "yesss": false,
		strings.Repeat("yes ", 100): false, "¡Sí!": false,
	} {
		if got := isYes(text); got != want {
			t.Errorf("isYes(%q) = %v, want %v", text, got, want)
		}
	}
}
