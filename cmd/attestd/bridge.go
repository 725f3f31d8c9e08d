package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/attestd/attestd/bridge/client"
	"github.com/attestd/attestd/bridge/pool"
	"github.com/attestd/attestd/bridge/provider"
	"github.com/attestd/attestd/bridge/stdio"
	"github.com/attestd/attestd/internal/providers"
)

// bridgeSignals are forwarded to the child.
var bridgeSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// bridgeSeams are what tests of "attestd bridge" replace; a nil field
// means the real one.
type bridgeSeams struct {
	// runChild runs the configured Bridge in front of cmd (Bridge.Run).
	runChild func(b *stdio.Bridge, cmd *exec.Cmd, in io.Reader, out io.Writer, sigs <-chan os.Signal) (int, error)
	// wrapProvider wraps the in-process provider of --provider, e.g. to
	// make it slow.
	wrapProvider func(provider.Provider) provider.Provider
}

func init() { register(newBridgeCommand(bridgeSeams{})) }

// newBridgeCommand returns the bridge command running with seams.
func newBridgeCommand(seams bridgeSeams) *command {
	if seams.runChild == nil {
		seams.runChild = (*stdio.Bridge).Run
	}
	if seams.wrapProvider == nil {
		seams.wrapProvider = func(p provider.Provider) provider.Provider { return p }
	}
	c := &command{
		name: "bridge",
		summary: "Run codex app-server (or COMMAND) behind a stdio bridge that answers its attestation requests.\n\n" +
			"Lines pass between this process's stdin/stdout and the child unchanged, except that the\n" +
			"client's initialize is opted into capabilities.requestAttestation and the child's\n" +
			"attestation/generate requests are answered here, from the daemon's socket or, with\n" +
			"--provider, an in-process token pool. Stderr, exit status and signals pass through.",
		usage: "bridge [--socket PATH | --agent LABEL|KEY | --provider " + providers.Names + "] [--deadline D] [--hold D] -- COMMAND [ARGS...]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error { return runBridge(ctx, s, c, seams, args) }
	return c
}

// bridgeFlags are the flags of "attestd bridge".
type bridgeFlags struct {
	where    *clientFlags
	provider providerFlags
	pool     poolFlags
	hold     *time.Duration
	log      logFlags
}

func addBridgeFlags(fs *flag.FlagSet) *bridgeFlags {
	return &bridgeFlags{
		where:    addClientFlags(fs),
		provider: addProviderFlags(fs, "", "make tokens in-process with this provider instead of asking the daemon: "+providers.Names),
		pool: addPoolFlags(fs, stdio.DefaultDeadline, poolFlagUsage{
			prefetch:   "with --provider: tokens kept ready while a turn runs",
			maxAge:     "with --provider: discard a ready token older than this",
			warmWindow: "with --provider: keep tokens ready for this long after the last demand",
			deadline:   "longest wait for a token per attestation/generate (keep under the app-server's 100ms)",
		}),
		hold: fs.Duration("hold", stdio.DefaultHold, "longest a client call that starts model requests (turn/start, …) waits for a token to be ready; 0 turns holding off"),
		log:  addLogFlags(fs, "warn"),
	}
}

// check says when the flags do not go together.
func (f *bridgeFlags) check(s *streams, argv []string) error {
	if len(argv) == 0 {
		return usagef("no command to run; e.g. attestd bridge -- codex app-server")
	}
	if f.where.socket != "" && *f.provider.name != "" {
		return usagef("give only one of --socket and --provider")
	}
	if f.where.agent != "" && *f.provider.name != "" {
		return usagef("give only one of --agent and --provider")
	}
	if !f.pool.valid() || *f.hold < 0 {
		return usagef("--deadline, --max-age and --warm-window must be positive, --hold not negative, and --prefetch at least 1")
	}
	spec := f.provider.spec(s)
	if spec == (providers.Spec{AgentLabel: spec.AgentLabel}) {
		return nil // the daemon's tokens
	}
	return spec.Check(true)
}

func runBridge(ctx context.Context, s *streams, c *command, seams bridgeSeams, args []string) error {
	fs := newFlagSet(s, c)
	f := addBridgeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	argv := fs.Args()
	if err := f.check(s, argv); err != nil {
		return err
	}
	logger, err := f.log.logger(s)
	if err != nil {
		return err
	}

	// Catch the signals to forward before anything that must be undone on
	// the way out (the token source), so a signal during start-up or
	// shutdown is forwarded or ignored rather than killing the bridge.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, bridgeSignals...)
	defer signal.Stop(sigs)

	src, closeSource, err := f.source(ctx, s, seams, logger)
	if err != nil {
		return err
	}
	defer closeSource()

	if _, err := exec.LookPath(argv[0]); err != nil {
		return withHint(err, "give the full path of the program, or put it on PATH")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted before %s started: %w", argv[0], err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = s.err

	// A client that closes its end of our stdout must not kill the bridge:
	// with SIGPIPE caught, the write fails with EPIPE instead and the bridge
	// drops the child's output from then on, still answering its token
	// requests and passing on its exit status. The child is unaffected:
	// caught signals are reset to their default on exec.
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	defer signal.Stop(pipes)

	b := &stdio.Bridge{Source: src, Deadline: *f.pool.deadline, Hold: *f.hold, Log: logger}
	if *f.hold == 0 {
		b.Hold = -1 // off; the zero Bridge.Hold means the default
	}
	code, err := seams.runChild(b, cmd, s.in, s.out, sigs)
	if err != nil {
		return err
	}
	if code != 0 {
		fmt.Fprintf(s.err, "attestd: bridge: %s %s\n", argv[0], describeExit(cmd, code))
		return exitCode(code)
	}
	return nil
}

// source returns where the bridge gets its tokens: an in-process pool
// with --provider, else the daemon's socket; call closeSource when done.
func (f *bridgeFlags) source(ctx context.Context, s *streams, seams bridgeSeams, logger *slog.Logger) (src stdio.Source, closeSource func(), err error) {
	if *f.provider.name != "" {
		prov, err := providers.New(f.provider.spec(s), logger, warner(s))
		if err != nil {
			return nil, nil, err
		}
		p := pool.New(f.pool.poolConfig(seams.wrapProvider(prov), logger))
		return p, func() { p.Close(); providers.Close(prov) }, nil
	}
	sock, err := f.where.resolve(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	cl := client.New(sock.Path)
	return stdio.OnUnreachable(cl, func() {
		fmt.Fprintf(s.err, "attestd: warning: no attestd daemon answers on %s; the app-server gets an error instead of each token\n", sock.Path)
		fmt.Fprintf(s.err, "attestd: hint: start the daemon (attestd serve, or its LaunchAgent), pass its --socket, or run the bridge with --provider\n")
	}), func() { cl.Close() }, nil
}

// describeExit says how the child ended, for a non-zero status.
func describeExit(cmd *exec.Cmd, code int) string {
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by %v (exit status %d)", ws.Signal(), code)
	}
	return fmt.Sprintf("exited with status %d", code)
}

var (
	_ stdio.Source = (*pool.Pool)(nil)
	_ stdio.Source = (*client.Client)(nil)
)
