// Command attestd-bench measures attestd against the limits in issue 7 and
// prints one Markdown table. Every figure has a baseline measured in the
// same run on the same machine, and the ratio between the two:
//
//   - socket round trip: attestation/generate with a warm pool, the daemon
//     ("attestd serve") as its own process, against a bare NDJSON answerer
//     (fdecho) as its own process, over the same kind of Unix socket;
//   - deadline hit rate, the hold's added latency and tokens made per
//     token served: the real pool on a fake clock (package poolsim) with
//     DeviceCheck-like latency and a codex-like pattern of turns, the
//     client signalling turns and holding turn/start as the stdio bridge
//     does, against generating on demand; and a Pareto table of pool
//     settings for several token lifetimes (-only pareto);
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

	"github.com/attestd/attestd/bridge/pool/poolsim"
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
	hours := flag.Int("hours", 100, "simulated hours of codex-like turns")
	pareto := flag.Bool("pareto", false, "also print the Pareto table of pool settings (for BENCHMARKS.md)")
	only := flag.String("only", "", "run only this part: pareto, holds, sim or roundtrip")
	starts := flag.Int("starts", 20, "process starts per side")
	flag.Parse()
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	switch *only {
	case "pareto":
		printPareto(os.Stdout, *hours)
		return
	case "sim":
		printTable(os.Stdout, deadlines(*hours))
		return
	case "holds":
		printHolds(os.Stdout, *hours)
		return
	}
	tmp, err := os.MkdirTemp("", "attestd-bench-")
	check(err)
	defer os.RemoveAll(tmp)
	log("building binaries…")
	host := buildHost(tmp)
	if *only == "roundtrip" {
		printTable(os.Stdout, roundTrips(tmp, host, *rounds))
		return
	}
	var rows []row

	log("socket round trips, process to process (%d each)…", *rounds)
	rows = append(rows, roundTrips(tmp, host, *rounds)...)

	log("deadline simulation (%d simulated hours)…", *hours)
	rows = append(rows, deadlines(*hours)...)

	log("bridge passthrough…")
	rows = append(rows, bridgeRows()...)

	log("start-up (%d starts each)…", *starts)
	rows = append(rows, startup(tmp, host, *starts)...)
	rows = append(rows, sizes(buildDarwin(tmp))...)

	printTable(os.Stdout, rows)
	if *pareto {
		log("Pareto table…")
		printPareto(os.Stdout, *hours)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// --- socket round trip ---------------------------------------------------

// roundTrips measures attestation/generate against the daemon as its own
// process (one P, as it runs by default) and, for comparison, with
// GOMAXPROCS=2, against fdecho, a Go process that answers each line at
// once, with its default GOMAXPROCS and with one P like the daemon. The
// target is judged against the faster echo. The sides alternate in ten
// blocks so that drift affects all alike.
func roundTrips(tmp string, b binaries, n int) []row {
	echo, stopEcho := startServer(tmp, "echo", b.fdecho, nil)
	defer stopEcho()
	echo1, stopEcho1 := startServer(tmp, "echo1", b.fdecho, []string{"GOMAXPROCS=1"})
	defer stopEcho1()
	args := []string{"serve", "--listen-fd", "3", "--provider", "dev", "--log-level", "error"}
	att, stopAtt := startServer(tmp, "attestd", b.attestd, nil, args...)
	defer stopAtt()
	att2, stopAtt2 := startServer(tmp, "attestd2", b.attestd, []string{"GOMAXPROCS=2"}, args...)
	defer stopAtt2()

	sides := []*lineConn{echo, echo1, att, att2}
	for i := range 2000 { // warm-up: the pools, the caches, the runtime
		for _, c := range sides {
			c.call(i)
		}
	}
	ds := make([][]time.Duration, len(sides))
	misses := 0
	const blocks = 10
	for blk := range blocks {
		for k, c := range sides {
			for i := range n / blocks {
				d, line := c.callLine(blk*n + i)
				if c == att && !bytes.Contains(line, []byte(`"token":"v1.`)) {
					misses++
				}
				ds[k] = append(ds[k], d)
			}
		}
	}
	p50 := func(k int) time.Duration { return poolsim.Percentile(ds[k], .5) }
	e, e1, a, a2 := p50(0), p50(1), p50(2), p50(3)
	base, baseName := e, "fdecho process"
	if e1 < e {
		base, baseName = e1, "fdecho process, GOMAXPROCS=1"
	}
	ep99, ap99 := poolsim.Percentile(ds[0], .99), poolsim.Percentile(ds[2], .99)
	note := ""
	if misses > 0 {
		note = fmt.Sprintf(" (%d answers without a token)", misses)
	}
	other := fmt.Sprintf(" (fdecho: %s with its default GOMAXPROCS, %s with one P; the faster is the baseline)", us(e), us(e1))
	return []row{
		ratioRow("socket round trip p50, warm pool, daemon process"+other+note, us(a), us(base), baseName, a.Seconds(), base.Seconds(), "≤ 1.5× echo", a.Seconds() <= 1.5*base.Seconds()),
		ratioRow("socket round trip p99, warm pool, daemon process", us(ap99), us(ep99), "fdecho process", ap99.Seconds(), ep99.Seconds(), "< 1 ms", ap99 < time.Millisecond),
		ratioRow("socket round trip p50, daemon with GOMAXPROCS=2 (for comparison)", us(a2), us(base), baseName, a2.Seconds(), base.Seconds(), "", true),
	}
}

// startServer starts bin with a listening Unix socket as fd 3 and
// connects to it.
func startServer(tmp, name, bin string, env []string, args ...string) (*lineConn, func()) {
	path := filepath.Join(tmp, name+".sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	check(err)
	f, err := l.File()
	check(err)
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	check(cmd.Start())
	f.Close()
	c, err := dialLines(path)
	check(err)
	return c, func() {
		c.close()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		l.Close()
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

// simDefaults is how the stdio bridge drives the pool: turn signals, and
// turn/start held up to HoldBound for a ready token.
func simDefaults(hours int) poolsim.Config {
	return poolsim.Config{Turns: true, Hold: HoldBound, Hours: hours, Seed: 7}
}

// HoldBound is the bound on the bridge's hold that the simulation models,
// the default proposed for --hold and the daemon's default wait.
const HoldBound = time.Second

func deadlines(hours int) []row {
	r, err := poolsim.Run(simDefaults(hours))
	check(err)
	od := pct(r.OnDemandHits, r.Requests)
	odPer := float64(r.Requests) / float64(max(r.OnDemandHits, 1))
	return []row{
		ratioRow(fmt.Sprintf("token within 100 ms, all requests, with the hold (%d requests in %d turns)", r.Requests, r.Turns),
			fmt.Sprintf("%.2f%%", r.HitRate()), fmt.Sprintf("%.2f%%", od), "generate on demand", r.HitRate(), od, "≥ 99.9%", r.HitRate() >= 99.9),
		ratioRow("token within 100 ms, first request of a turn", fmt.Sprintf("%.2f%%", r.FirstHitRate()), fmt.Sprintf("%.2f%%", od), "generate on demand", r.FirstHitRate(), od, "", true),
		ratioRow(fmt.Sprintf("latency the hold adds at turn start, mean (p99 %s, max %s; %d of %d holds reached the %s bound)", ms(r.HoldP99), ms(r.HoldMax), r.HoldBound, r.Turns, HoldBound),
			ms(r.HoldMean), "", "", 0, 0, "≤ 50 ms", r.HoldMean <= 50*time.Millisecond),
		ratioRow("answer p99 (token or error); simulated, add the socket round trip", ms(r.P99), ms(r.OnDemandP99), "generate on demand", r.P99.Seconds(), r.OnDemandP99.Seconds(), "", true),
		ratioRow("tokens generated per token served", fmt.Sprintf("%.2f (%d/%d)", r.PerServed(), r.Generated, r.Served), fmt.Sprintf("%.2f", odPer), "generate on demand", r.PerServed(), odPer, "≤ 2.5", r.PerServed() <= 2.5),
	}
}

// printPareto prints, for each token lifetime, the pool settings worth
// choosing between: the hit rate, the hold's added latency and the tokens
// made per token served.
func printPareto(w io.Writer, hours int) {
	type v struct {
		name string
		set  func(*poolsim.Config)
	}
	vs := []v{
		{"1 ready between turns, 2 in a turn (warm size 1, prefetch 2)", func(c *poolsim.Config) { c.WarmSize, c.Size = 1, 2 }},
		{"2 between turns, 2 in a turn (warm size 2, prefetch 2)", func(c *poolsim.Config) { c.WarmSize, c.Size = 2, 2 }},
		{"1 between turns, 3 in a turn (warm size 1, prefetch 3)", func(c *poolsim.Config) { c.WarmSize, c.Size = 1, 3 }},
		{"1 between turns for 1 min (warm size 1, warm window 1m)", func(c *poolsim.Config) { c.WarmSize, c.Size, c.WarmWindow = 1, 2, time.Minute }},
	}
	fmt.Fprintf(w, "\n| max age | pool settings (warm window 2m unless named; %d simulated hours, seed 7) | token within 100 ms, all requests | first of a turn | hold mean / p99 | generated/served |\n|---|---|---|---|---|---|\n", hours)
	for _, age := range []time.Duration{20 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute} {
		for _, x := range vs {
			cfg := simDefaults(hours)
			cfg.MaxAge = age
			x.set(&cfg)
			r, err := poolsim.Run(cfg)
			check(err)
			fmt.Fprintf(w, "| %s | %s | %.2f%% | %.2f%% | %s / %s | %.2f |\n", age, x.name, r.HitRate(), r.FirstHitRate(),
				ms(r.HoldMean), ms(r.HoldP99), r.PerServed())
		}
	}
	fmt.Fprintf(w, "\n| client (max age 20s, defaults otherwise) | token within 100 ms, all requests | first of a turn | hold mean / p99 | generated/served |\n|---|---|---|---|---|\n")
	for _, c := range []struct {
		name string
		cfg  poolsim.Config
	}{
		{"turn signals and the hold (the stdio bridge; a socket client using attestation/warm with turn and wait)", simDefaults(hours)},
		{"turn signals, no hold", poolsim.Config{Turns: true, Hours: hours, Seed: 7}},
		{"a warm-up hint at each turn/start, no turn signals", poolsim.Config{WarmHints: true, Hours: hours, Seed: 7}},
		{"requests only", poolsim.Config{Hours: hours, Seed: 7}},
	} {
		r, err := poolsim.Run(c.cfg)
		check(err)
		fmt.Fprintf(w, "| %s | %.2f%% | %.2f%% | %s / %s | %.2f |\n", c.name, r.HitRate(), r.FirstHitRate(), ms(r.HoldMean), ms(r.HoldP99), r.PerServed())
	}
}

// printHolds prints what the bound on the bridge's hold buys, with every
// other setting at its default: the table behind the --hold default.
func printHolds(w io.Writer, hours int) {
	fmt.Fprintf(w, "\n| hold bound (%d simulated hours, seed 7) | all requests in time | first of a turn | hold mean | holds at the bound |\n|---|---|---|---|---|\n", hours)
	for _, bound := range []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, time.Second, 2 * time.Second} {
		cfg := simDefaults(hours)
		cfg.Hold = bound
		r, err := poolsim.Run(cfg)
		check(err)
		fmt.Fprintf(w, "| %s | %.2f%% | %.2f%% | %.0f ms | %d of %d |\n", bound, r.HitRate(), r.FirstHitRate(),
			float64(r.HoldMean)/float64(time.Millisecond), r.HoldBound, r.Turns)
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
}

func build(goos, goarch, pkg, out string) string {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if o, err := cmd.CombinedOutput(); err != nil {
		check(fmt.Errorf("build %s for %s/%s: %v\n%s", pkg, goos, goarch, err, o))
	}
	return out
}

// buildHost builds attestd and fdecho for this machine.
func buildHost(tmp string) binaries {
	return binaries{
		attestd: build(runtime.GOOS, runtime.GOARCH, "./cmd/attestd", filepath.Join(tmp, "attestd")),
		fdecho:  build(runtime.GOOS, runtime.GOARCH, "./test/bench/fdecho", filepath.Join(tmp, "fdecho")),
	}
}

// buildDarwin builds both for each Mac architecture: arch → attestd, fdecho.
func buildDarwin(tmp string) map[string][2]string {
	d := map[string][2]string{}
	for _, arch := range []string{"arm64", "amd64"} {
		d[arch] = [2]string{
			build("darwin", arch, "./cmd/attestd", filepath.Join(tmp, "attestd-darwin-"+arch)),
			build("darwin", arch, "./test/bench/fdecho", filepath.Join(tmp, "fdecho-darwin-"+arch)),
		}
	}
	return d
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

func sizes(darwin map[string][2]string) []row {
	var rows []row
	for _, arch := range []string{"arm64", "amd64"} {
		a, e := fileSize(darwin[arch][0]), fileSize(darwin[arch][1])
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
		base := ""
		if r.baseName != "" {
			base = r.baseName + ": " + r.base
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.figure, r.value, base, r.ratio, r.target, r.verdict)
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
