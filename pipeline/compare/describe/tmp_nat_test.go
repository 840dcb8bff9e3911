package describe

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/connectingpeople/cpi/schemas"
)

func TestTmpNational(t *testing.T) {
	dir := os.Getenv("CPI_NAT_GEN")
	if dir == "" {
		t.Skip()
	}
	s, _ := schemas.Default()
	t0 := time.Now()
	rows, err := serviceUse(context.Background(), s, dir)
	t.Logf("fast %v %d %v", time.Since(t0), len(rows), err)
}
