// Command attestd-bench measures attestd against the limits in issue 7 and
// prints one Markdown table. Every figure has a baseline measured in the
// same run on the same machine, and the ratio between the two:
//
//   - socket round trip: attestation/generate with a warm pool against a
//     bare NDJSON echo over the same kind of Unix socket;
//   - deadline hit rate: the real pool on a fake clock (package poolsim)
//     with DeviceCheck-like latency and a codex-like request pattern,
//     against generating on demand;
//   - bridge passthrough: the stdio bridge's own benchmark against io.Copy
//     through the same pipes, and the latency it adds per line;
//   - start-up, idle memory and binary size: attestd against fdecho, the
//     least a Go program can do in its place.
//
// Run it from the module root: go run ./test/bench (make bench-table).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/pool/poolsim"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/server"
	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/bridge/stdio"
)

// row is one line of the table.
type row struct {
	figure             string
	value, base        string
	baseName           string
	ratio              string
	target, verdict    string
	valueNum, baseNum  float64
	hasRatio, lowerBad bool
}

func main() {
	rounds := flag.Int("roundtrips", 20000, "socket round trips per side")
	hours := flag.Int("hours", 100, "simulated hours of codex-like requests")
	variants := flag.Bool("variants", false, "also simulate other pool settings (for BENCHMARKS.md)")
	only := flag.String("only", "", "run only this part: variants or roundtrip")
	starts := flag.Int("starts", 20, "process starts per side")
	flag.Parse()
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	if *only == "variants" {
		printVariants(os.Stdout, *hours)
		return
	}
	tmp, err := os.MkdirTemp("", "attestd-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	if *only == "roundtrip" {
		printTable(os.Stdout, roundTrips(tmp, *rounds))
		return
	}
	var rows []row

	log("socket round trips (%d each)…", *rounds)
	rows = append(rows, roundTrips(tmp, *rounds)...)

	log("deadline simulation (%d simulated hours)…", *hours)
	rows = append(rows, deadlines(*hours)...)

	log("bridge passthrough…")
	rows = append(rows, bridgeRows()...)

	log("building binaries…")
	bins := buildAll(tmp)
	log("start-up (%d starts each)…", *starts)
	rows = append(rows, startup(tmp, bins, *starts)...)
	rows = append(rows, sizes(bins)...)

	printTable(os.Stdout, rows)
	if *variants {
		log("pool variants…")
		printVariants(os.Stdout, *hours)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// --- socket round trip ---------------------------------------------------

func roundTrips(tmp string, n int) []row {
	echoPath := filepath.Join(tmp, "echo.sock")
	el, err := net.Listen("unix", echoPath)
	check(err)
	defer el.Close()
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()

	p := pool.New(pool.Config{Provider: provider.Dev{}})
	defer p.Close()
	srv := server.New(server.Config{Tokens: p})
	path := filepath.Join(tmp, "run", "attestd.sock")
	l, err := socket.Listen(path)
	check(err)
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())
	p.Warm()

	echo, err := dialLines(echoPath)
	check(err)
	defer echo.close()
	att, err := dialLines(path)
	check(err)
	defer att.close()

	// Warm both up, then alternate blocks so drift hits both alike.
	for i := range 2000 {
		echo.call(i)
		att.call(i)
	}
	var e, a []time.Duration
	misses := 0
	const blocks = 10
	for b := range blocks {
		for i := range n / blocks {
			e = append(e, echo.call(b*n+i))
		}
		for i := range n / blocks {
			d, line := att.callLine(b*n + i)
			if !bytes.Contains(line, []byte(`"token":"v1.`)) {
				misses++
			}
			a = append(a, d)
		}
	}
	ep50, ep99 := poolsim.Percentile(e, .5), poolsim.Percentile(e, .99)
	ap50, ap99 := poolsim.Percentile(a, .5), poolsim.Percentile(a, .99)
	note := ""
	if misses > 0 {
		note = fmt.Sprintf(" (%d answers without a token)", misses)
	}
	return []row{
		ratioRow("socket round trip p50, warm pool"+note, us(ap50), us(ep50), "bare NDJSON echo", ap50.Seconds(), ep50.Seconds(), "≤ 1.5× echo", ap50.Seconds() <= 1.5*ep50.Seconds()),
		ratioRow("socket round trip p99, warm pool", us(ap99), us(ep99), "bare NDJSON echo", ap99.Seconds(), ep99.Seconds(), "< 1 ms", ap99 < time.Millisecond),
	}
}

type lineConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte
}

func dialLines(path string) (*lineConn, error) {
	nc, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &lineConn{nc: nc, br: bufio.NewReader(nc)}, nil
}

func (c *lineConn) call(id int) time.Duration {
	d, _ := c.callLine(id)
	return d
}

func (c *lineConn) callLine(id int) (time.Duration, []byte) {
	c.buf = append(c.buf[:0], `{"id":`...)
	c.buf = strconv.AppendInt(c.buf, int64(id), 10)
	c.buf = append(c.buf, `,"method":"attestation/generate"}`+"\n"...)
	start := time.Now()
	_, err := c.nc.Write(c.buf)
	check(err)
	line, err := c.br.ReadSlice('\n')
	check(err)
	return time.Since(start), line
}

func (c *lineConn) close() { c.nc.Close() }

// --- deadline hit rate ---------------------------------------------------

func deadlines(hours int) []row {
	r, err := poolsim.Run(poolsim.Config{Hours: hours, Seed: 7})
	check(err)
	return simRows(r, "")
}

func simRows(r poolsim.Result, label string) []row {
	after := r.Requests - r.FirstOfWindow
	share := pct(r.HitsAfterFirst, after)
	od := pct(r.OnDemandHits, r.Requests)
	perServed := float64(r.Generated) / float64(max(r.Served, 1))
	odPer := float64(r.Requests) / float64(max(r.OnDemandHits, 1))
	return []row{
		ratioRow(fmt.Sprintf("token within 100 ms, after the first of a warm window%s (%d requests, %d first)", label, after, r.FirstOfWindow),
			fmt.Sprintf("%.2f%%", share), fmt.Sprintf("%.2f%%", od), "generate on demand", share, od, "≥ 99.9%", share >= 99.9),
		ratioRow("token within 100 ms, all requests"+label, fmt.Sprintf("%.2f%%", pct(r.Hits, r.Requests)), fmt.Sprintf("%.2f%%", od), "generate on demand", pct(r.Hits, r.Requests), od, "", true),
		ratioRow("answer p99 (token or error), after the first of a warm window; simulated, add the socket round trip"+label, ms(r.P99AfterFirst), ms(r.OnDemandP99), "generate on demand", r.P99AfterFirst.Seconds(), r.OnDemandP99.Seconds(), "", true),
		ratioRow("answer p99 (token or error), all requests"+label, ms(r.P99), ms(r.OnDemandP99), "generate on demand", r.P99.Seconds(), r.OnDemandP99.Seconds(), "", true),
		ratioRow("tokens generated per token served"+label, fmt.Sprintf("%.2f (%d/%d)", perServed, r.Generated, r.Served), fmt.Sprintf("%.2f", odPer), "generate on demand", perServed, odPer, "≤ 1.2", perServed <= 1.2),
	}
}

func printVariants(w io.Writer, hours int) {
	type v struct {
		name string
		cfg  poolsim.Config
	}
	vs := []v{
		{"defaults (prefetch 2, max age 20s, warm window 10m)", poolsim.Config{}},
		{"prefetch 3", poolsim.Config{Size: 3}},
		{"prefetch 4", poolsim.Config{Size: 4}},
		{"prefetch 1", poolsim.Config{Size: 1}},
		{"warm window 5m", poolsim.Config{WarmWindow: 5 * time.Minute}},
		{"warm window 2m", poolsim.Config{WarmWindow: 2 * time.Minute}},
		{"warm window 60s", poolsim.Config{WarmWindow: time.Minute}},
		{"warm window 30s", poolsim.Config{WarmWindow: 30 * time.Second}},
		{"max age 60s (if Apple allowed it)", poolsim.Config{MaxAge: time.Minute}},
		{"max age 2m (if Apple allowed it)", poolsim.Config{MaxAge: 2 * time.Minute}},
		{"max age 5m (if Apple allowed it)", poolsim.Config{MaxAge: 5 * time.Minute}},
		{"max age 2m, warm window 2m", poolsim.Config{MaxAge: 2 * time.Minute, WarmWindow: 2 * time.Minute}},
	}
	fmt.Fprintf(w, "\n| pool settings (%d simulated hours, seed 7) | token within 100 ms, after the first of a warm window | all requests | first of a window | generated/served |\n|---|---|---|---|---|\n", hours)
	for _, x := range vs {
		x.cfg.Hours, x.cfg.Seed = hours, 7
		r, err := poolsim.Run(x.cfg)
		check(err)
		fmt.Fprintf(w, "| %s | %.2f%% | %.2f%% | %d of %d | %.2f |\n", x.name,
			pct(r.HitsAfterFirst, r.Requests-r.FirstOfWindow), pct(r.Hits, r.Requests), r.FirstOfWindow, r.Requests,
			float64(r.Generated)/float64(max(r.Served, 1)))
	}
}

// --- bridge passthrough --------------------------------------------------

// bridgeRows runs the bridge's own throughput benchmark (bridge/stdio,
// BenchmarkPassthrough) and measures the latency the bridge adds per line.
func bridgeRows() []row {
	var rows []row
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkPassthrough$", "-benchtime", "5x", "-count", "3", "./bridge/stdio").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: bridge benchmark failed: %v\n%s", err, out)
	} else {
		// Three runs per direction; the median run by ratio stands.
		type run struct{ br, cp, x float64 }
		runs := map[string][]run{}
		var order []string
		re := regexp.MustCompile(`BenchmarkPassthrough/(\S+?)(-\d+)?\s.*`)
		for _, line := range strings.Split(string(out), "\n") {
			m := re.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if runs[m[1]] == nil {
				order = append(order, m[1])
			}
			runs[m[1]] = append(runs[m[1]], run{metric(line, "bridge-MiB/s"), metric(line, "io.Copy-MiB/s"), metric(line, "x-of-io.Copy")})
		}
		for _, dir := range order {
			rs := runs[dir]
			sort.Slice(rs, func(i, j int) bool { return rs[i].x < rs[j].x })
			r := rs[len(rs)/2]
			rows = append(rows, ratioRow(fmt.Sprintf("bridge throughput, %s (32 MiB of app-server-like NDJSON; median of %d runs)", dir, len(rs)),
				fmt.Sprintf("%.0f MiB/s", r.br), fmt.Sprintf("%.0f MiB/s", r.cp), "io.Copy, same pipes", r.x, 1, "≥ 0.7×", r.x >= 0.7))
		}
	}
	b, c := lineLatency(5000)
	rows = append(rows, ratioRow("bridge round trip per line, client→child→client p50",
		us(b), us(c), "io.Copy, same pipes", b.Seconds(), c.Seconds(), "", true))
	rows[len(rows)-1].figure += fmt.Sprintf(" (adds %s per line, both ways)", us(b-c))
	return rows
}

func metric(line, unit string) float64 {
	f := strings.Fields(line)
	for i := 1; i < len(f); i++ {
		if f[i] == unit {
			v, _ := strconv.ParseFloat(f[i-1], 64)
			return v
		}
	}
	return 0
}

type fixedSource struct{}

func (fixedSource) Token(context.Context) (string, error) { return "v1.bench", nil }
func (fixedSource) Warm()                                 {}

// lineLatency sends one line at a time from a client through a relay to an
// echoing child and back, through the bridge and then through io.Copy.
func lineLatency(n int) (bridge, plain time.Duration) {
	line := []byte(`{"method":"item/agentMessage/delta","params":{"threadId":"t-1","turnId":"u-1","itemId":"i-7","delta":"some words of the answer "}}` + "\n")
	run := func(useBridge bool) time.Duration {
		cR, cW := pipe()                                              // client → relay
		rR, rW := pipe()                                              // relay → client
		kR, kW := pipe()                                              // relay → child
		kOutR, kOutW := pipe()                                        // child → relay
		go func() { io.Copy(kOutW, kR); kOutW.Close(); kR.Close() }() // the child echoes
		done := make(chan struct{})
		if useBridge {
			go func() {
				b := &stdio.Bridge{Source: fixedSource{}}
				b.Serve(cR, rW, kW, kOutR)
				rW.Close()
				close(done)
			}()
		} else {
			go func() {
				go func() { io.Copy(kW, cR); kW.Close() }()
				io.Copy(rW, kOutR)
				rW.Close()
				close(done)
			}()
		}
		br := bufio.NewReader(rR)
		var ds []time.Duration
		for i := range n + 500 {
			start := time.Now()
			_, err := cW.Write(line)
			check(err)
			_, err = br.ReadSlice('\n')
			check(err)
			if i >= 500 {
				ds = append(ds, time.Since(start))
			}
		}
		cW.Close()
		<-done
		for _, f := range []*os.File{cR, rR, kOutR} {
			f.Close()
		}
		return poolsim.Percentile(ds, .5)
	}
	plain = run(false)
	bridge = run(true)
	return bridge, plain
}

func pipe() (*os.File, *os.File) {
	r, w, err := os.Pipe()
	check(err)
	return r, w
}

// --- start-up, memory, size ----------------------------------------------

type binaries struct {
	attestd, fdecho string
	darwin          map[string][2]string // arch → attestd, fdecho
}

func buildAll(tmp string) binaries {
	b := binaries{darwin: map[string][2]string{}}
	build := func(goos, goarch, pkg, out string) string {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if o, err := cmd.CombinedOutput(); err != nil {
			check(fmt.Errorf("build %s for %s/%s: %v\n%s", pkg, goos, goarch, err, o))
		}
		return out
	}
	b.attestd = build(runtime.GOOS, runtime.GOARCH, "./cmd/attestd", filepath.Join(tmp, "attestd"))
	b.fdecho = build(runtime.GOOS, runtime.GOARCH, "./test/bench/fdecho", filepath.Join(tmp, "fdecho"))
	for _, arch := range []string{"arm64", "amd64"} {
		b.darwin[arch] = [2]string{
			build("darwin", arch, "./cmd/attestd", filepath.Join(tmp, "attestd-darwin-"+arch)),
			build("darwin", arch, "./test/bench/fdecho", filepath.Join(tmp, "fdecho-darwin-"+arch)),
		}
	}
	return b
}

// startOnce execs bin with a listening socket as fd 3, as launchd socket
// activation does, and returns the time from exec to the first answer and
// the process's resident memory after it has been idle a moment.
func startOnce(tmp string, i int, bin string, args []string, request string, want []byte) (time.Duration, int) {
	path := filepath.Join(tmp, fmt.Sprintf("start-%d.sock", i))
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	check(err)
	defer l.Close()
	f, err := l.File()
	check(err)
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{f}
	start := time.Now()
	check(cmd.Start())
	f.Close()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	c, err := dialLines(path)
	check(err)
	defer c.close()
	_, err = io.WriteString(c.nc, request)
	check(err)
	line, err := c.br.ReadSlice('\n')
	check(err)
	took := time.Since(start)
	if !bytes.Contains(line, want) {
		check(fmt.Errorf("%s: first answer %q lacks %q", filepath.Base(bin), line, want))
	}
	// A few more requests, then idle.
	for range 10 {
		io.WriteString(c.nc, request)
		c.br.ReadSlice('\n')
	}
	time.Sleep(500 * time.Millisecond)
	return took, rssKiB(cmd.Process.Pid)
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

func startup(tmp string, b binaries, n int) []row {
	var at, et []time.Duration
	var arss, erss []time.Duration // KiB, as durations for Percentile
	for i := range n {
		d, r := startOnce(tmp, 2*i, b.attestd, []string{"serve", "--listen-fd", "3", "--provider", "dev", "--log-level", "error"},
			`{"id":1,"method":"attestation/generate"}`+"\n", []byte(`"token":"v1.`))
		at, arss = append(at, d), append(arss, time.Duration(r))
		d, r = startOnce(tmp, 2*i+1, b.fdecho, nil, `{"id":1,"method":"attestation/generate"}`+"\n", []byte(`"result"`))
		et, erss = append(et, d), append(erss, time.Duration(r))
	}
	a50, e50 := poolsim.Percentile(at, .5), poolsim.Percentile(et, .5)
	ar, er := poolsim.Percentile(arss, .5), poolsim.Percentile(erss, .5)
	rows := []row{
		ratioRow("start-up: exec → first token, listening socket inherited as fd 3 (p50)", ms(a50), ms(e50), "fdecho (Go, answers at once)", a50.Seconds(), e50.Seconds(), "≤ 20 ms", a50 <= 20*time.Millisecond),
		ratioRow("idle RSS after 11 requests", fmt.Sprintf("%.1f MiB", float64(ar)/1024), fmt.Sprintf("%.1f MiB", float64(er)/1024), "fdecho", float64(ar), float64(er), "", true),
	}
	if rssKiB(os.Getpid()) == 0 {
		rows[1].value, rows[1].base, rows[1].ratio = "n/a (no /proc)", "n/a", ""
	}
	return rows
}

func sizes(b binaries) []row {
	var rows []row
	for _, arch := range []string{"arm64", "amd64"} {
		a, e := fileSize(b.darwin[arch][0]), fileSize(b.darwin[arch][1])
		rows = append(rows, ratioRow("binary size, darwin/"+arch+" (-trimpath -s -w)", mib(a), mib(e), "fdecho", float64(a), float64(e), "", true))
	}
	return rows
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	check(err)
	return fi.Size()
}

// --- formatting ----------------------------------------------------------

func ratioRow(figure, value, base, baseName string, v, b float64, target string, met bool) row {
	r := row{figure: figure, value: value, base: base, baseName: baseName, target: target}
	if b != 0 && v != 0 {
		r.ratio = fmt.Sprintf("%.2f×", v/b)
	}
	if target != "" {
		r.verdict = "met"
		if !met {
			r.verdict = "**missed**"
		}
	}
	return r
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintf(w, "| figure | attestd | baseline | ratio | target | |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s: %s | %s | %s | %s |\n", r.figure, r.value, r.baseName, r.base, r.ratio, r.target, r.verdict)
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
func mib(n int64) string        { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }
