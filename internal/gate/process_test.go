package gate

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/attestd/attestd/internal/gate/gatetest"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/redisreplay/redistest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// attestdBinary builds cmd/attestd once per test run.
func attestdBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "attestd-gate-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "attestd")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/attestd/attestd/cmd/attestd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// gateProcess is "attestd gate" running as its own process.
type gateProcess struct{ *gatetest.Process }

// startGateProcess runs the built attestd's gate with args and env
// (gatetest.Start).
func startGateProcess(t *testing.T, env []string, args ...string) *gateProcess {
	t.Helper()
	return &gateProcess{gatetest.Start(t, attestdBinary(t), time.Minute, env, args...)}
}

// check sends one forward-auth check and returns its status, 0 when no
// answer came (the gate is gone).
func (p *gateProcess) check(client *http.Client, att string) int {
	req, _ := http.NewRequest("GET", p.URL()+"/auth", nil)
	req.Header.Set(verify.HeaderName, att)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Two gates, real processes sharing one Redis, both sent every header at
// once; one is killed (SIGKILL) mid-run. No header is admitted twice, no
// record of an admitted header is lost (each is refused afterwards), at
// most the headers in flight at the kill are admitted by neither, and the
// survivor drains and exits 0 on SIGTERM.
func TestKillOneOfTwoGates(t *testing.T) {
	t.Parallel()
	a := newApple(t)
	a.SetLatency(2 * time.Millisecond) // checks are in flight when the kill comes
	srv := redistest.Start(t)
	env := []string{"ATTESTD_KEY=" + a.keyFile(t), "ATTESTD_REPLAY_REDIS=" + srv.URL()}
	args := []string{"--team-id", teamID, "--key-id", keyID, "--environment", a.URL, "--apple-rate-limit", "-1"}
	gates := []*gateProcess{startGateProcess(t, env, args...), startGateProcess(t, env, args...)}

	const headers, workers, killAfter = 400, 8, 100
	atts := make([]string, headers)
	for i := range atts {
		atts[i] = a.valid(t)
	}
	admitted := make([][2]int, headers) // per header, 200s from each gate
	var next, admissions atomic.Int32
	var killOnce sync.Once
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < headers; i = int(next.Add(1)) - 1 {
				var both sync.WaitGroup
				for g := range gates {
					both.Go(func() {
						if gates[g].check(client, atts[i]) == http.StatusOK {
							admitted[i][g]++
							if admissions.Add(1) >= killAfter {
								killOnce.Do(func() { gates[0].Cmd.Process.Signal(syscall.SIGKILL) })
							}
						}
					})
				}
				both.Wait()
			}
		})
	}
	wg.Wait()
	select {
	case <-gates[0].Done:
	case <-time.After(time.Minute):
		t.Fatal("the killed gate still runs")
	}

	var byNeither, byA, byB int
	for i, n := range admitted {
		switch {
		case n[0]+n[1] > 1:
			t.Errorf("header %d admitted %d times (gate A %d, gate B %d)", i, n[0]+n[1], n[0], n[1])
		case n[0] == 1:
			byA++
		case n[1] == 1:
			byB++
		default:
			byNeither++
		}
		if n[0]+n[1] > 0 {
			if code := gates[1].check(client, atts[i]); code != http.StatusForbidden {
				t.Errorf("header %d, admitted before, sent to the surviving gate again: %d, want 403: its record was lost", i, code)
			}
		}
	}
	t.Logf("%d headers: %d admitted by gate A before its kill, %d by gate B, %d by neither (in flight at the kill)", headers, byA, byB, byNeither)
	if byA == 0 || byB == 0 || byNeither > workers {
		t.Errorf("admitted by A %d, by B %d, by neither %d (at most %d were in flight at the kill)", byA, byB, byNeither, workers)
	}

	gates[1].Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-gates[1].Done:
		if st := gates[1].Cmd.ProcessState; !st.Success() {
			t.Errorf("after SIGTERM: %v, want exit 0", st)
		}
	case <-time.After(time.Minute):
		t.Fatal("the surviving gate did not exit within a minute of SIGTERM")
	}
}
