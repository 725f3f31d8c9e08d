// Command gatebench measures what "attestd gate" adds to a request: nginx
// with auth_request asking the gate (the real binary, its own process,
// with the configuration of internal/proxytest/testdata/nginx-auth-request.conf)
// against nginx serving the same upstream directly, in one run. Every
// request carries a fresh attestation header (a 2 KB DeviceCheck-like
// token), on both sides. The gate asks a fake Apple
// (verify/devicechecktest) that answers at once, then one that answers
// after -apple-latency (a real Apple round trip), with the gate's limits
// on calls to Apple off (--apple-rate-limit -1 --apple-max-concurrent -1).
//
// Two loads, each side in turn, alternating in -blocks blocks so that
// drift affects both alike:
//
//   - throughput: -conns clients on loopback, each sending its next
//     request once the last is answered: requests/s at saturation;
//   - latency: -rate requests a second, sent on schedule whatever the
//     answers do (an open loop, below either side's saturation): p50 and
//     p99, and what the gate adds to each.
//
// It prints one Markdown table on stdout, progress on stderr.
//
//	go run ./test/gatebench [-duration 10s] [-conns 32] [-rate 200] [-apple-latency 50ms]
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/attestd/attestd/bridge/header"
	"github.com/attestd/attestd/internal/proxytest"
	"github.com/attestd/attestd/verify"
	"github.com/attestd/attestd/verify/devicechecktest"
)

const teamID, keyID = "TEAMID1234", "ABC123DEFG"

// settings are the command line's.
type settings struct {
	duration, latency time.Duration
	conns, rate       int
	blocks            int
}

func main() {
	var set settings
	flag.DurationVar(&set.duration, "duration", 10*time.Second, "how long each side is loaded, per load and scenario")
	flag.IntVar(&set.conns, "conns", 32, "clients of the throughput load, each one request at a time")
	flag.IntVar(&set.rate, "rate", 200, "requests a second of the latency load")
	flag.DurationVar(&set.latency, "apple-latency", 50*time.Millisecond, "the fake Apple's latency in the second scenario")
	flag.IntVar(&set.blocks, "blocks", 5, "blocks the sides alternate in")
	flag.Parse()
	env := &runner{}
	defer env.cleanup()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	env.check(err)
	apple := devicechecktest.NewServer(&key.PublicKey, teamID, keyID) // accepts every well-formed token
	env.Cleanup(apple.Close)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	env.Cleanup(up.Close)
	gateAddr := env.startGate(key, apple.URL)
	upHost := up.Listener.Addr().String()
	direct := proxytest.StartNginx(env, func(e proxytest.Env) string {
		return fmt.Sprintf("server {\n    listen %s;\n    large_client_header_buffers 4 16k;\n    location / { proxy_pass http://%s; }\n}", e.Addr, upHost)
	})
	gated := proxytest.StartNginx(env, proxytest.NginxAuthRequest(gateAddr, upHost))

	fmt.Printf("| Apple answers | load | nginx → upstream | nginx + gate → upstream | gate / direct | added p50 | added p99 |\n|---|---|---|---|---|---|---|\n")
	for _, apl := range []time.Duration{0, set.latency} {
		apple.SetLatency(apl)
		for _, open := range []bool{false, true} {
			what := fmt.Sprintf("%d clients", set.conns)
			if open {
				what = fmt.Sprintf("%d requests/s", set.rate)
			}
			logf("Apple answering after %v, %s, %v per side in %d blocks…", apl, what, set.duration, set.blocks)
			sides := []*side{{url: direct.URL()}, {url: gated.URL()}}
			if open {
				sides = append(sides, &side{call: appleCall(env, key, apple.URL)})
			}
			for range set.blocks {
				for _, s := range sides {
					s.load(env, set, open)
				}
			}
			printRow(apl, what, sides)
		}
	}
	fmt.Printf("\n%d CPUs, %s, %s; the fake Apple, the upstream and the load in this process, the gate and nginx in their own.\n",
		runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, runtime.Version())
}

// side is one way to the upstream and what loading it measured.
type side struct {
	url string
	// call, when set, is what one request is instead of a GET of url.
	call      func() error
	mu        sync.Mutex
	latencies []time.Duration
	elapsed   time.Duration
	failed    int
}

// load loads s for one block: a closed loop of set.conns clients, or
// (open) set.rate requests a second on schedule.
func (s *side) load(env *runner, set settings, open bool) {
	d := set.duration / time.Duration(set.blocks)
	tr := &http.Transport{MaxIdleConnsPerHost: max(set.conns, 256)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	if open {
		interval := time.Second / time.Duration(set.rate)
		for at := start; at.Before(stop); at = at.Add(interval) {
			time.Sleep(time.Until(at))
			wg.Go(func() { s.request(env, client) })
		}
	} else {
		for range set.conns {
			wg.Go(func() {
				for time.Now().Before(stop) {
					s.request(env, client)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start) // a closed loop: until the last answer
	if open {
		elapsed = d // the schedule's rate; late answers are latency, not rate
	}
	s.mu.Lock()
	s.elapsed += elapsed
	s.mu.Unlock()
}

// request sends one request with a fresh attestation and notes its
// latency; an answer other than 200 counts as failed.
func (s *side) request(env *runner, client *http.Client) {
	if s.call != nil {
		t0 := time.Now()
		err := s.call()
		s.note(time.Since(t0), err != nil)
		return
	}
	tok := make([]byte, 2000)
	rand.Read(tok)
	value, err := header.Encode(header.Value{Kind: header.KindDeviceCheck, Token: tok, GeneratedAt: time.Now(), BundleID: "com.example.app", TeamID: teamID})
	env.check(err)
	req, _ := http.NewRequest("GET", s.url+"/v1/responses", nil)
	req.Header.Set(verify.HeaderName, `{"v":1,"s":0,"t":"`+value+`"}`)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s.note(time.Since(t0), err != nil || resp.StatusCode != http.StatusOK)
}

func (s *side) note(d time.Duration, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, d)
	if failed {
		s.failed++
	}
}

func (s *side) rps() float64 { return float64(len(s.latencies)) / s.elapsed.Seconds() }

func (s *side) percentile(p float64) time.Duration {
	slices.Sort(s.latencies)
	if len(s.latencies) == 0 {
		return 0
	}
	return s.latencies[min(len(s.latencies)-1, int(p*float64(len(s.latencies))))]
}

func (s *side) String() string {
	note := ""
	if s.failed > 0 {
		note = fmt.Sprintf(", %d not 200", s.failed)
	}
	return fmt.Sprintf("%.0f req/s, p50 %s, p99 %s%s", s.rps(), ms(s.percentile(.5)), ms(s.percentile(.99)), note)
}

// printRow prints one scenario and load: both sides and what the gate
// adds; with a third side, Apple's round trip alone, what the gate adds
// beyond it too.
func printRow(apl time.Duration, load string, sides []*side) {
	direct, gated := sides[0], sides[1]
	when := "at once"
	if apl > 0 {
		when = "after " + apl.String()
	}
	p50, p99 := gated.percentile(.5)-direct.percentile(.5), gated.percentile(.99)-direct.percentile(.99)
	added := ms(p50)
	if len(sides) > 2 {
		trip := sides[2].percentile(.5)
		beyond := p50 - trip
		added += fmt.Sprintf(" = Apple's round trip %s (a Go client's p50) %+.2f ms", ms(trip), float64(beyond)/float64(time.Millisecond))
		if apl > 0 {
			added += fmt.Sprintf(" (%+.1f%% of it)", 100*beyond.Seconds()/trip.Seconds())
		}
	}
	fmt.Printf("| %s | %s | %v | %v | %.2f× req/s, %.2f× p50 | %s | %s |\n", when, load, direct, gated,
		gated.rps()/direct.rps(), gated.percentile(.5).Seconds()/direct.percentile(.5).Seconds(), added, ms(p99))
}

// appleCall returns one call to the fake Apple's validate_device_token
// with a fresh token, as the gate makes it (a verify.Client, limits off).
func appleCall(env *runner, key *ecdsa.PrivateKey, appleURL string) func() error {
	c, err := verify.NewClient(verify.Config{TeamID: teamID, KeyID: keyID, Key: key, BaseURL: appleURL, RateLimit: -1, MaxConcurrent: -1})
	env.check(err)
	env.Cleanup(c.CloseIdleConnections)
	return func() error {
		tok := make([]byte, 2000)
		rand.Read(tok)
		return c.ValidateDeviceToken(context.Background(), tok)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "gatebench: "+format+"\n", args...) }

// startGate builds attestd, runs "attestd gate" in forward-auth mode
// against the fake Apple at appleURL, and returns its address.
func (env *runner) startGate(key *ecdsa.PrivateKey, appleURL string) string {
	dir := env.TempDir()
	bin := filepath.Join(dir, "attestd")
	logf("building attestd…")
	build := exec.Command("go", "build", "-o", bin, "github.com/attestd/attestd/cmd/attestd")
	build.Env, build.Stderr = append(os.Environ(), "CGO_ENABLED=0"), os.Stderr
	env.check(build.Run())
	der, err := x509.MarshalPKCS8PrivateKey(key)
	env.check(err)
	keyFile := filepath.Join(dir, "AuthKey.p8")
	env.check(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	addr := freeAddr(env)
	cmd := exec.Command(bin, "gate", "--listen", addr, "--team-id", teamID, "--key-id", keyID, "--key", keyFile,
		"--environment", appleURL, "--apple-rate-limit", "-1", "--apple-max-concurrent", "-1", "--log-level", "warn")
	cmd.Stderr = os.Stderr
	env.check(cmd.Start())
	env.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(env, "http://"+addr+"/healthz")
	return addr
}
