package reliability

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as a client run under another uid: with childEnv
// set it runs that client instead of the tests.
const childEnv = "ATTESTD_RELIABILITY_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		// Every test cleans up after itself; whatever runs now leaked.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// child runs a fake client program and returns its exit status.
//
//	peer  dials $SOCK, sends one attestation/generate call and copies the
//	      daemon's answer (one line, or EOF) to stdout; exits 3 if it
//	      cannot dial
func child(mode string) int {
	switch mode {
	case "peer":
		nc, err := net.DialTimeout("unix", os.Getenv("SOCK"), 5*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dial: %v\n", err)
			return 3
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "{\"id\":1,\"method\":\"attestation/generate\"}\n")
		line, err := bufio.NewReader(nc).ReadString('\n')
		fmt.Fprintf(os.Stdout, "%s", line)
		if err != nil {
			fmt.Fprintf(os.Stdout, "\nread: %v\n", err)
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
	return 2
}

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// attestdBin builds cmd/attestd once per test binary (without the race
// detector: the process is under test, not its memory model) and returns
// its path.
func attestdBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "attestd-rel-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "attestd")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/attestd/attestd/cmd/attestd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build cmd/attestd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skipf("the binary tests need a Unix; this is %s", runtime.GOOS)
	}
	return binPath
}
