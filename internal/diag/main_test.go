package diag

import (
	"testing"

	"go.uber.org/goleak"
)

// Every server, pool and bounded call a test starts must be gone when
// the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
